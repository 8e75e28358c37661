"""What a detector trains on and is built from: SqueezeDet's layers, the per-anchor targets (positives, ignored,
background), flips and crops that move the boxes with the pixels, the loss, and the settings a detector takes."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekit.detection.boxes import anchor_grid, corners, decode
from mobilekit.detection.targets import (IDLE_DELTA_WEIGHT, IGNORE_IOU, LOGIT_BOUND, LOGIT_PULL, box_loss, class_loss,
                                        flip_targets, jitter, split, targets)
from mobilekit.errors import MobilekitError
from mobilekit.pipeline import BuildConfig

SHAPES = np.array([[0.2, 0.2], [0.45, 0.15], [0.15, 0.45]])  # any two on one centre: IoU under 0.4
GRID = 4
ANCHORS = anchor_grid(SHAPES, GRID, GRID)
CLASSES = 3


def _box_on(anchor: int) -> np.ndarray:
    return corners(ANCHORS[anchor])


def test_a_box_on_an_anchor_makes_it_positive_with_zero_deltas_and_its_class():
    t = targets(_box_on(10), np.array([2]), np.array([False]), ANCHORS, CLASSES)
    assert t.shape == (len(ANCHORS), 5 + CLASSES + 1)
    assert np.flatnonzero(t[:, 4]).tolist() == [10]  # no other anchor reaches IoU 0.5 with it
    np.testing.assert_allclose(t[10, :4], 0, atol=1e-6)
    assert t[10, 5:5 + CLASSES].tolist() == [0, 0, 1] and t[:, 5:5 + CLASSES].sum() == 1
    np.testing.assert_allclose(decode(t[10:11, :4], ANCHORS[10:11]), _box_on(10), atol=1e-6)


def test_near_misses_are_ignored_and_everything_else_is_background():
    from mobilekit.detection.boxes import iou

    box = np.array([[0.3, 0.3, 0.55, 0.5]])  # IoU 0.516 with one anchor, 0.469 with another
    t = targets(box, np.array([0]), np.array([False]), ANCHORS, CLASSES)

    overlaps = iou(corners(ANCHORS), box)[:, 0]
    ignored = np.flatnonzero(t[:, -1] == 0)
    assert len(ignored) == 1 and all(IGNORE_IOU <= overlaps[i] < 0.5 for i in ignored)
    assert np.flatnonzero(t[:, 4]).tolist() == [int(overlaps.argmax())]
    background = (t[:, 4] == 0) & (t[:, -1] == 1)
    assert np.all(overlaps[background] < IGNORE_IOU) and t[background, 5:-1].sum() == 0


def test_a_box_flagged_ignore_trains_nothing_and_an_image_without_boxes_is_all_background():
    t = targets(_box_on(10), np.array([1]), np.array([True]), ANCHORS, CLASSES)
    assert t[:, 4].sum() == 0 and t[10, -1] == 0 and t[:, 5:-1].sum() == 0
    empty = targets(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0, bool), ANCHORS, CLASSES)
    assert empty[:, :-1].sum() == 0 and empty[:, -1].min() == 1


def test_two_boxes_that_want_the_same_anchor_get_one_each():
    box = _box_on(10)
    t = targets(np.stack([box[0], box[0] + 0.01]), np.array([0, 1]), np.zeros(2, bool), ANCHORS, CLASSES)
    assert t[10, 5:5 + CLASSES].tolist() in ([1, 0, 0], [0, 1, 0])
    assert t[:, 5].sum() >= 1 and t[:, 6].sum() >= 1  # the second box took another anchor


def test_flipped_targets_are_the_targets_of_the_flipped_image():
    from mobilekit.backend import tf

    boxes = np.array([[0.1, 0.05, 0.35, 0.3], [0.5, 0.55, 0.9, 0.8]])
    mirrored = boxes[:, [0, 3, 2, 1]] * [1, -1, 1, -1] + [0, 1, 0, 1]
    t = targets(boxes, np.array([0, 2]), np.zeros(2, bool), ANCHORS, CLASSES)
    want = targets(mirrored, np.array([0, 2]), np.zeros(2, bool), ANCHORS, CLASSES)
    got = flip_targets(tf.constant(t), GRID, GRID, len(SHAPES)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("width", [64, 96])  # square, and wide as an HxW build's images
def test_a_crop_moves_and_clips_the_boxes_with_the_pixels(width):
    image = np.zeros((64, width, 3), np.uint8)
    image[16:40, 8:32] = 255  # the object: rows 16-39, columns 8-31
    box = np.array([[16 / 64, 8 / width, 40 / 64, 32 / width]])
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(20):
        moved, boxes, labels, ignore = jitter(image, box, np.array([1]), np.array([False]), rng)
        assert moved.shape == image.shape and len(boxes) == len(labels) == len(ignore)
        bright = np.argwhere(moved[..., 0] > 127)
        if not len(boxes):
            continue
        (y0, x0, y1, x1), = boxes * [64, width, 64, width]
        assert labels.tolist() == [1]
        assert abs(bright[:, 0].min() - y0) <= 1.5 and abs(bright[:, 0].max() + 1 - y1) <= 1.5
        assert abs(bright[:, 1].min() - x0) <= 1.5 and abs(bright[:, 1].max() + 1 - x1) <= 1.5
        checked += 1
    assert checked >= 10


def test_the_loss_is_zero_on_its_targets_and_smaller_for_the_right_class():
    from mobilekit.backend import tf

    t = targets(_box_on(10), np.array([2]), np.array([False]), ANCHORS, CLASSES)[None]
    deltas, scores = (tf.constant(a) for a in split(t))
    assert float(box_loss(deltas, tf.constant(t[..., :4]))) == 0.0
    # smooth L1 of 0.5 on the positive's 4 deltas, and IDLE_DELTA_WEIGHT x the mean squared delta (4 x 0.25) of the others
    assert float(box_loss(deltas, tf.constant(t[..., :4] + 0.5))) == pytest.approx(0.125 * 4 + IDLE_DELTA_WEIGHT * 1.0)
    right = np.full((1, len(ANCHORS), CLASSES), -5.0, np.float32)  # logits
    right[0, 10, 2] = 5.0
    wrong = right.copy()
    wrong[0, 10] = [5.0, -5.0, -5.0]
    assert float(class_loss(scores, tf.constant(right))) < 0.01 < float(class_loss(scores, tf.constant(wrong)))
    # a logit beyond +-LOGIT_BOUND costs its excess squared, averaged: the drift that ruined the int8 scores
    drifted = right.copy()
    drifted[0, 0, 0] = -LOGIT_BOUND - 10
    extra = float(class_loss(scores, tf.constant(drifted))) - float(class_loss(scores, tf.constant(right)))
    assert extra == pytest.approx(LOGIT_PULL * 100 / right.size, rel=1e-3)


def test_squeezedet_puts_convdet_on_fire11_at_stride_16():
    from mobilekit import archs

    model = archs.create("squeezedet", input_shape=(128, 128, 3), classes=10, anchors_per_cell=9)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 7 * 7 * 9, 4), (None, 7 * 7 * 9, 10)]
    head_input = model.get_layer("convdet_dropout").input
    assert head_input.name.startswith("fire11_concat") and tuple(head_input.shape) == (None, 7, 7, 768)
    # SqueezeDet on KITTI (3 classes, 9 anchors, 1248x384, SqueezeNet 1.0 without BN): SqueezeNet 1.0's 1,248,424
    # parameters less conv10's 513,000, fire10 418,656, fire11 443,232, and ConvDet's 768 x 3 x 3 x 72 + 72 =
    # 497,736: 2,095,048, the paper's 7.9 MB of float32 (7.99 MiB). Per-class sigmoid scores do without its one
    # confidence per anchor (768 x 3 x 3 x 9 weights + 9 biases).
    kitti = archs.create("squeezedet", input_shape=(384, 1248, 3), classes=3, backbone="squeezenet1_0",
                         batch_norm=False)
    assert kitti.count_params() + (768 * 9 * 9 + 9) == 2_095_048


@pytest.mark.parametrize(("kw", "message"), [
    ({"weights": "imagenet"}, "weights='imagenet': squeezedet's backbone squeezenet1_1 has none offline"),
    ({"data": "fashion-mnist"}, "data='fashion-mnist': squeezedet takes a folder of images with boxes"),
    ({"max_accuracy_drop": 1.0}, "max_accuracy_drop=1.0: squeezedet takes no accuracy budget"),
    ({"precision": "auto"}, "precision='auto': squeezedet is full int8 up to its post-processing"),
    ({"io": "float32"}, "io='float32': squeezedet takes uint8 or int8 pixels in"),
])
def test_settings_a_detector_does_not_take_are_refused_in_one_line(kw, message):
    with pytest.raises(MobilekitError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        BuildConfig(arch="squeezedet", **kw)


def test_a_detector_s_defaults():
    cfg = BuildConfig(arch="squeezedet")
    assert (cfg.input_size, cfg.epochs, cfg.batch_size, cfg.max_accuracy_drop, cfg.io) == (128, 12.0, 32, None, "uint8")
    assert cfg.spec.sparsity == 0.5 and cfg.spec.qat
    assert BuildConfig(arch="squeezedet", input_size=96, epochs=1).input_size == 96


def test_a_detector_takes_a_height_by_width_input_and_a_classifier_refuses_it():
    from mobilekit.explore.space import _cast
    from mobilekit.pipeline.config import SETTINGS
    from mobilekit.tasks.detection import feature_grid, head_settings

    size = SETTINGS["input_size"]
    assert size.from_text("96x160") == size.from_text(" 96 X 160") == (96, 160) and size.from_text("128x128") == 128
    assert _cast("input_size", int, "96x160") == (96, 160) and _cast("input_size", int, [96, 160]) == (96, 160)
    cfg = BuildConfig(arch="squeezedet", input_size=(96, 160))
    assert cfg.input_size == (96, 160) and cfg.to_dict()["input_size"] == [96, 160]
    assert BuildConfig(arch="squeezedet", input_size=[128, 128]).input_size == 128  # a square keeps its plain form
    assert feature_grid(head_settings(cfg), cfg.input_size) == (5, 9)  # SqueezeNet 1.1's valid pooling
    assert feature_grid({"backbone": "mobilenet_v2"}, (96, 130)) == (6, 9)  # padded: ceil(n / 16)
    for bad in ((96, 2000), (0, 96), (96, 160, 3), (96.0, 160)):
        with pytest.raises(MobilekitError, match=r"^input_size must be an int in \[1, 1024\], or HxW"):
            BuildConfig(arch="squeezedet", input_size=bad)
    with pytest.raises(MobilekitError, match="^input_size=96x160: squeezenet1_1 is a classifier and takes one side"):
        BuildConfig(arch="squeezenet", input_size=(96, 160))


@pytest.mark.parametrize(("argv", "message"), [
    (["--data", "{missing}"], "detection data '{missing}' is not a folder"),
    (["--data", "{classes}"], "'{classes}' is a classification folder"),
    (["--raw-outputs", "--arch", "mobilenet_v2"], "raw_outputs=True: mobilenet_v2 is a classifier"),
    (["--anchors-per-cell", "0"], "squeezedet: anchors_per_cell must be a positive int up to 64; received anchors_per_cell=0"),
])
def test_bad_detector_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    from mobilekit import cli

    classes = tmp_path / "classes"
    for name in ("cat", "dog"):
        (classes / name).mkdir(parents=True)
        (classes / name / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    paths = {"missing": str(tmp_path / "nope"), "classes": str(classes)}
    argv = [a.format(**paths) for a in argv]
    assert cli.main(["build", "--arch", "squeezedet", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message.format(**paths) in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.needs_data
def test_a_classifier_given_a_folder_of_boxes_is_told_so(tmp_path, capsys):
    from mobilekit import cli
    from mobilekit.detection.embedded import make_split
    from mobilekit.detection.formats import write_detection_set

    folder = write_detection_set(make_split(tmp_path / "made", "train", 4, seed=0), tmp_path / "voc", "voc")
    assert cli.main(["build", "--arch", "mobilenet_v2", "--data", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith(
        f"{str(folder)!r} is a detection folder (Pascal VOC layout) and mobilenet_v2 is a classifier; --arch "
        "squeezedet builds detectors from it"), err


@pytest.mark.slow  # builds two ImageNet-size backbones (2-3 s each): the full lane (CI) runs it
@pytest.mark.parametrize(("backbone", "features", "channels"), [("mobilenet_v2", "block_12_add", 96),
                                                                ("efficientnet_lite0", "block_10_add", 112)])
def test_the_same_head_sits_on_the_other_backbones_at_stride_16(backbone, features, channels):
    """MobileNet v2's and EfficientNet-Lite0's last stride-16 block feeds fire10 (the blocks after it are not built),
    the grid is the one the targets use, and the head's layers are the ones a transfer build trains first."""
    from mobilekit import archs
    from mobilekit.archs.squeezedet import head_layers
    from mobilekit.tasks.detection import feature_grid

    model = archs.create("squeezedet", input_shape=(112, 112, 3), classes=4, anchors_per_cell=3, backbone=backbone)
    fire10 = model.get_layer("fire10_squeeze1x1").input
    assert fire10.name.startswith(features) and tuple(fire10.shape) == (None, 7, 7, channels)
    assert feature_grid({"backbone": backbone}, 112) == (7, 7) and feature_grid({"backbone": backbone}, 100) == (7, 7)
    last = int(features.split("_")[1])
    assert not any(layer.name.startswith((f"block_{last + 1}_", "conv_last")) for layer in model.layers)
    head = head_layers(model)
    assert "convdet_scores" in head and "fire10_concat" in head and not any(n.startswith("block_") for n in head)
    wide = archs.create("squeezedet", input_shape=(112, 112, 3), classes=4, anchors_per_cell=3, backbone=backbone,
                        width=1.4 if backbone == "mobilenet_v2" else 1.1)
    assert wide.count_params() > model.count_params()


@pytest.mark.parametrize(("kw", "message"), [
    ({"backbone": "resnet50"}, "squeezedet: backbone must be one of squeezenet1_0, squeezenet1_1, mobilenet_v2, "
                               "efficientnet_lite0; received backbone='resnet50'"),
    ({"backbone": "mobilenet_v2", "base_e": 64}, "squeezedet: base_e does not apply to backbone='mobilenet_v2'"),
    ({"width": 0.5}, "squeezedet: width does not apply to backbone='squeezenet1_1'"),
])
def test_backbone_knobs_that_do_not_apply_are_refused(kw, message):
    with pytest.raises(MobilekitError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        BuildConfig(arch="squeezedet", arch_kwargs=kw)


def test_pretrained_detector_weights_are_the_backbone_s_and_fix_its_layout():
    from mobilekit.weights import PRETRAINED, pretrained_for

    entry = pretrained_for("squeezedet", "imagenet", {"backbone": "efficientnet_lite0"})
    assert entry.arch == "efficientnet_lite0" and "dropout" not in entry.builder_kwargs  # the head keeps its own
    assert entry.builder_kwargs == {k: v for k, v in PRETRAINED[("efficientnet_lite0", "imagenet")].builder_kwargs.items()
                                    if k != "dropout"}
    cfg = BuildConfig(arch="squeezedet", weights="imagenet", arch_kwargs={"backbone": "mobilenet_v2"})
    assert cfg.mode == "transfer" and cfg.transfer and not cfg.imagenet_as_is  # the embedded set is data
    assert (cfg.input_size, cfg.head_epochs, cfg.fine_tune, cfg.label_smoothing) == (128, 5.0, "all", 0.0)
    with pytest.raises(MobilekitError, match="^bn_epsilon=0.001 does not apply to weights='imagenet'"):
        BuildConfig(arch="squeezedet", weights="imagenet", arch_kwargs={"backbone": "mobilenet_v2",
                                                                        "bn_epsilon": 1e-3})


def test_the_float_model_s_map_is_the_evaluation_that_gave_keras_float():
    """A scratch build evaluates float, pruned, QAT; a transfer build head, fine-tune (keras_float is the fine-tune's
    number, not a new evaluation), pruned, QAT: the float mAP@[.5:.95] is the evaluation behind keras_float."""
    from types import SimpleNamespace

    from mobilekit.tasks.detection import Detection

    scratch = SimpleNamespace(ds=SimpleNamespace(extra={"keras_maps": [0.11, 0.09, 0.10]}))
    assert Detection.keras_float_map({"test_images": 4, "keras_float": 0.2, "keras_pruned": 0.1,
                                      "keras_qat": 0.15}, scratch) == 0.11
    transfer = SimpleNamespace(ds=SimpleNamespace(extra={"keras_maps": [0.05, 0.12, 0.10, 0.11]}))
    assert Detection.keras_float_map({"keras_head": 0.1, "keras_fine_tune": 0.3, "keras_float": 0.3,
                                      "keras_pruned": 0.2, "keras_qat": 0.25}, transfer) == 0.12
    assert Detection.keras_float_map({"keras_pruned": 0.2}, transfer) is None


@pytest.mark.slow  # builds two ImageNet-size backbones (2-3 s each): the full lane (CI) runs it
@pytest.mark.parametrize("backbone", ["mobilenet_v2", "efficientnet_lite0"])
def test_a_pretrained_backbone_holds_the_ported_imagenet_weights_and_the_head_starts_untrained(backbone):
    """--weights imagenet: every backbone layer of the detector equals the ported ImageNet classifier's, built in the
    checkpoint's layout; the head (fire10, fire11, ConvDet) is the builder's own initialisation, and its
    BatchNormalization trains while the backbone's stays frozen (frozen, the head's BN is the identity, and Lite0's
    unnormalised features blew its training up)."""
    from mobilekit.pipeline.transfer import head_layers, is_batch_norm, set_trainable
    from mobilekit.tasks.detection import Detection
    from mobilekit.weights import pretrained_model

    cfg = BuildConfig(arch="squeezedet", weights="imagenet", arch_kwargs={"backbone": backbone}, input_size=96)
    model = Detection().create_model(cfg)
    imagenet = pretrained_model(backbone, "imagenet", (96, 96, 3))
    shared = [layer for layer in model.layers if layer.weights and layer.name in
              {other.name for other in imagenet.layers}]
    assert len(shared) > 50 and not any(layer.name.startswith(("fire10", "convdet")) for layer in shared)
    for layer in shared:
        for ours, theirs in zip(layer.get_weights(), imagenet.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    scores = model.get_layer("convdet_scores").get_weights()[1]
    np.testing.assert_allclose(scores, np.log(0.01 / 0.99), rtol=1e-6)  # the focal prior, not a ported value
    head = head_layers(model)
    record = set_trainable(model, [layer.name for layer in model.layers if layer.weights], head)
    norms = [layer for layer in model.layers if is_batch_norm(layer)]
    trained = {layer.name for layer in norms if layer.trainable}
    assert trained and trained == {layer.name for layer in norms if layer.name.startswith(("fire10", "fire11"))}
    assert len(norms) > len(trained) + 20 and record["batch_norm"].startswith("backbone's frozen")
