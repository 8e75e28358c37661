"""Transfer learning's parts: the EfficientNet-Lite0 builder and port, the head swap, the layers each phase trains,
BatchNorm frozen (inference mode), the settings' checks, and the small-data report pieces."""

import hashlib

import numpy as np
import pytest

import mobilekit
from mobilekit.complexity import complexity
from mobilekit.archs.efficientnet import stage_table
from mobilekit.weights import (HEAD, efficientnet_lite0_checkpoint, load_state_dict, pretrained,
                                  pretrained_model)
from mobilekit.errors import MobilekitError
from mobilekit.pipeline import BuildConfig
from mobilekit.pipeline.evaluation import class_report, thin_class_warnings, wilson_interval
from mobilekit.pipeline.config import check_fine_tune_syntax
from mobilekit.pipeline.transfer import blocks, fine_tune_layers, set_trainable

pytestmark = pytest.mark.xdist_group("transfer")  # one worker builds the module fixture `small_mobilenet` for all

SIZE = 32  # the smallest input the backbones take: these tests are about layers, not accuracy


def test_efficientnet_lite0_matches_the_published_table():
    model = mobilekit.create("efficientnet_lite0")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4_652_008  # published 4.65 M
    assert 0.38e9 <= complexity(model)["macs"] <= 0.41e9  # published ~0.39-0.41 GMACs at 224
    assert len(blocks(model)) == 16
    assert not any(type(layer).__name__ in ("Lambda", "Activation") and layer.name != "predictions"
                   for layer in model.layers)


def test_lite_scaling_keeps_stem_head_and_the_end_stages_repeats():
    lite0, lite2 = stage_table(1.0, 1.0), stage_table(1.1, 1.2)
    assert [r for *_, r in lite0] == [1, 2, 2, 3, 3, 4, 1]
    assert [r for *_, r in lite2] == [1, 3, 3, 4, 4, 5, 1]  # first and last fixed (Lite), the rest ceil(1.2 r)
    assert [c for *_, c, _ in lite2] == [16, 24, 48, 88, 120, 208, 352]  # multiples of 8, >= 90% of 1.1 c
    model = mobilekit.create("efficientnet_lite0", width_coefficient=1.1, depth_coefficient=1.2,
                             input_shape=(SIZE, SIZE, 3), classes=3)
    assert model.get_layer("conv1").filters == 32 and model.get_layer("conv_last").filters == 1280
    with pytest.raises(MobilekitError, match=r"width_coefficient must be in \(0, 4\]; received width_coefficient=0"):
        mobilekit.create("efficientnet_lite0", width_coefficient=0)


def test_efficientnet_checkpoint_reads_as_the_lukemelas_layout():
    sd = load_state_dict(efficientnet_lite0_checkpoint())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    learned = sum(v.size for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert learned == 4_652_008
    entry = pretrained("efficientnet_lite0", "imagenet")
    assert hashlib.sha256(entry.checkpoint().read_bytes()).hexdigest() == entry.sha256


@pytest.mark.slow  # builds two ImageNet-size backbones (2-3 s each): the full lane (CI) runs it
@pytest.mark.parametrize("arch", ["mobilenet_v2", "efficientnet_lite0"])
def test_the_head_is_swapped_and_the_backbone_keeps_imagenet_weights(arch):
    imagenet = pretrained_model(arch, "imagenet", (SIZE, SIZE, 3))
    model = pretrained_model(arch, "imagenet", (SIZE, SIZE, 3), classes=5)
    assert imagenet.output_shape == (None, 1000) and model.output_shape == (None, 5)
    assert model.get_layer(HEAD).get_weights()[0].shape == (1280, 5)
    for layer in model.layers:
        if layer.weights and layer.name != HEAD:
            for new, old in zip(layer.get_weights(), imagenet.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(new, old)


def test_weights_for_an_arch_without_them_are_refused_naming_the_available_ones():
    with pytest.raises(MobilekitError, match=r"no offline 'imagenet' weights for shufflenet_v2; available: "
                                             r"--arch mobilenet_v2 --weights imagenet, --arch efficientnet_lite0"):
        BuildConfig(arch="shufflenet_v2", weights="imagenet", data="fashion-mnist")


@pytest.fixture(scope="module")
def small_mobilenet():
    return pretrained_model("mobilenet_v2", "imagenet", (SIZE, SIZE, 3), classes=3)


def _bn(model):
    return [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]


def test_each_fine_tune_setting_selects_its_layers(small_mobilenet):
    model = small_mobilenet
    weighted = [layer.name for layer in model.layers if layer.weights and layer not in _bn(model)]
    assert fine_tune_layers(model, "none") == [HEAD]
    assert sorted(fine_tune_layers(model, "all")) == sorted(weighted)
    top = fine_tune_layers(model, "block_15")
    assert top[0] == "block_15_expand" and {"block_16_project", "conv_last", HEAD} <= set(top)
    assert not any(name.startswith(("block_14_", "conv1")) for name in top)
    quarter = fine_tune_layers(model, "0.25")
    assert len(quarter) == round(0.25 * (len(weighted) - 1)) + 1 and quarter[-2:] == ["conv_last", HEAD]
    with pytest.raises(MobilekitError, match=r"fine_tune='block_17' names no block of .*block_0 \.\. block_16"):
        fine_tune_layers(model, "block_17")


@pytest.mark.parametrize("value, canonical", [("ALL", "all"), ("none", "none"), ("block_3", "block_3"),
                                              ("0.50", "0.5"), ("1", "1")])
def test_fine_tune_syntax(value, canonical):
    assert check_fine_tune_syntax(value) == canonical


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2", "block", "block_x", "top", "", "nan", True])
def test_fine_tune_syntax_refused(value):
    with pytest.raises(MobilekitError, match="fine_tune must be all, none, block_N"):
        check_fine_tune_syntax(value)


def _state(model):
    return {w.name: w.numpy().copy() for w in model.weights}


def _changed(before, model):
    return {w.name for w in model.weights if not np.array_equal(before[w.name], w.numpy())}


@pytest.mark.slow  # trains (a few steps): the full lane (CI) runs it
def test_phases_train_only_their_layers_and_batchnorm_stays_in_inference_mode(small_mobilenet):
    """Phase 1 changes only the head; phase 2 (``block_16``) only block 16's convs, conv_last and the head; no BN
    statistic or scale moves in either (a BN layer in training mode would update its moving mean and variance)."""
    from types import SimpleNamespace

    from mobilekit.pipeline.transfer import train_phases

    cfg = BuildConfig(arch="mobilenet_v2", weights="imagenet", data="fashion-mnist", input_size=SIZE, head_epochs=2,
                      epochs=2, fine_tune="block_16", batch_size=8, seed=0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, SIZE, SIZE, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 16)
    data = SimpleNamespace(ds=SimpleNamespace(x_train=x, y_train=y, y_test=y), x_test=x.astype(np.float32) / 255)
    model = small_mobilenet
    before = _state(model)
    from mobilekit.pipeline import transfer

    calls = []
    original = transfer.set_trainable

    def spy(m, names, head=()):  # after each phase's set-up, snapshot what is trainable
        record = original(m, names, head)
        calls.append(({layer.name for layer in m.layers if layer.trainable and layer.weights}, _state(m)))
        return record

    transfer.set_trainable = spy
    try:
        accuracy, phases = train_phases(cfg, data, model)
    finally:
        transfer.set_trainable = original
    head_trainable, _ = calls[0]
    assert head_trainable == {HEAD}
    fine_trainable, after_head = calls[1]
    assert fine_trainable == {"block_16_expand", "block_16_depthwise", "block_16_project", "conv_last", HEAD}
    assert {n.split("/")[0] for n in _changed(before, model) if n in after_head} <= fine_trainable
    changed_in_head = {n.split("/")[0] for n in _changed(before, model) if not np.array_equal(before[n], after_head[n])}
    assert changed_in_head == {HEAD}
    assert not any(n.split("/")[0].endswith("_bn") for n in _changed(before, model))
    assert [p["phase"] for p in phases] == ["head", "fine_tune"] and phases[0]["steps"] == 4
    assert phases[1]["trainable_layers"] == sorted(fine_trainable) and set(accuracy) == {"keras_head", "keras_fine_tune"}
    # After the phases, the compression stages may train every layer but BatchNormalization.
    assert all(layer.trainable != (layer in _bn(model)) for layer in model.layers if layer.weights)


def test_set_trainable_reports_counts(small_mobilenet):
    record = set_trainable(small_mobilenet, [HEAD])
    assert record["trainable_layers"] == [HEAD] and record["trainable_params"] == 1280 * 3 + 3
    assert record["frozen_params"] == small_mobilenet.count_params() - record["trainable_params"]


def test_transfer_defaults_and_the_as_is_case():
    t = BuildConfig(arch="efficientnet_lite0", weights="imagenet", data="fashion-mnist")
    assert (t.transfer, t.head_epochs, t.epochs, t.batch_size, t.label_smoothing, t.fine_tune, t.fine_tune_lr) == \
        (True, 5.0, 5.0, 32, 0.1, "all", 1e-4)
    scratch = BuildConfig()
    assert (scratch.epochs, scratch.batch_size, scratch.label_smoothing, scratch.fine_tune) == (1.5, 128, 0.0, None)
    as_is = BuildConfig(arch="mobilenet_v2", weights="imagenet")
    assert as_is.imagenet_as_is and as_is.recipe == "int8-ptq" and as_is.epochs == 0 and as_is.calibration == "percentile"
    from dataclasses import asdict

    assert asdict(BuildConfig(**asdict(as_is))) == asdict(as_is)  # a report's config reads back as the same build


def test_wilson_interval_and_class_report():
    low, high = wilson_interval(80, 100)
    assert (round(low, 3), round(high, 3)) == (0.711, 0.867)  # the textbook value for 80/100
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    detail = class_report([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 2, 2], ["a", "b", "c"])
    assert detail["confusion"] == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    assert detail["per_class"]["b"] == {"test_images": 3, "accuracy": 2 / 3}
    warning = thin_class_warnings(detail)
    assert len(warning) == 1 and "3 class(es) have fewer than 20 test images" in warning[0]


def test_test_data_folder_trains_on_all_of_data(tmp_path):
    from mobilekit.data import load_image_folder, write_image_folder

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    write_image_folder(tmp_path / "train", images[:8], np.array([0, 1] * 4), ["cats", "dogs"])
    write_image_folder(tmp_path / "test", images[8:], np.array([0, 1, 1, 1]), ["cats", "dogs"])
    ds = load_image_folder(tmp_path / "train", size=8, test_path=tmp_path / "test")
    assert (len(ds.x_train), len(ds.x_test)) == (8, 4) and list(ds.y_test) == [0, 1, 1, 1]
    assert ds.extra["test_source"] == str(tmp_path / "test")


def test_explore_sweeps_pretrained_or_scratch_and_how_much_to_unfreeze():
    from mobilekit.explore.space import ExploreConfig, parse_space_arg, plan

    knob, values = parse_space_arg("fine_tune=none,all,block_12")
    cfg = ExploreConfig(base={"arch": "mobilenet_v2", "input_size": 32},
                        space={"weights": ["imagenet", "none"], knob: values})
    points, _ = plan(cfg, "fingerprint")
    configs = {(p.config["weights"], p.config["fine_tune"]) for p in points}
    # three pretrained points and one scratch point (fine-tuning means nothing without weights)
    assert configs == {("imagenet", "none"), ("imagenet", "all"), ("imagenet", "block_12"), (None, None)}
    assert all(p.config["data"] == "fashion-mnist" for p in points if p.config["weights"])
    bad, _ = plan(ExploreConfig(base={"arch": "squeezenet1_1"}, space={"weights": ["imagenet"]}), "fingerprint")
    assert "no offline 'imagenet' weights for squeezenet1_1" in bad[0].error


def test_a_build_that_lost_most_of_its_float_accuracy_is_refused_on_evidence_only():
    from mobilekit.pipeline.guards import check_kept_accuracy

    y = np.repeat(np.arange(10), 6)  # 60 test images, chance 10%
    with pytest.raises(MobilekitError, match=r"refused: the int8 file's accuracy 10\.0% on 60 test images .*"
                                             r"float model learned \(53\.3%.*qat 10\.0%"):
        check_kept_accuracy({"keras_float": 0.533, "keras_qat": 0.1, "tflite_int8": 0.1}, y, 10)
    check_kept_accuracy({"keras_float": 0.533, "tflite_int8": 0.45}, y, 10)  # kept most of it
    check_kept_accuracy({"keras_float": 0.25, "tflite_int8": 0.1}, y, 10)  # float barely learned: not judged
    check_kept_accuracy({"keras_float": 1.0, "tflite_int8": 0.5}, np.array([0, 1]), 2)  # 2 images prove nothing


def test_qat_that_loses_accuracy_falls_back_to_post_training_quantization():
    from mobilekit.pipeline.stages import Trained, qat_or_fallback

    before = Trained("pruned model", {"keras_float": 0.81, "keras_pruned": 0.775}, masks={"conv": 1})
    kept = Trained("qat model", {**before.accuracy, "keras_qat": 0.77}, masks={"conv": 1}, float_model="exported")
    assert qat_or_fallback(before, kept, 10_000) is kept  # within 2 points
    assert qat_or_fallback(before, Trained("qat", {**before.accuracy, "keras_qat": 0.735}), 60).model == "qat"  # noise
    lost = Trained("qat model", {**before.accuracy, "keras_qat": 0.58}, masks={"conv": 1}, float_model="exported")
    used = qat_or_fallback(before, lost, 10_000)
    assert used.model == "pruned model" and used.float_model is None and used.masks == {"conv": 1}
    assert used.accuracy["keras_qat"] == 0.58 and "lost 19.5% points (77.5% -> 58.0%)" in used.accuracy["qat_fallback"]
