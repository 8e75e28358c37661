"""Compression recipes: presets = JSON, each recipe's promise read back from the flatbuffer, sizes, distillation.

deep-compression and prune-int8 run through the whole build in tests/test_build_e2e.py; here the
other recipes' stages run on a small SqueezeNet with a few eager steps (cheap, same functions)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mobilekit
from mobilekit.backend import keras, tfmot
from mobilekit.convert import convert_int8
from mobilekit.optimize import (KeepClusters, cluster, cluster_labels, fold_batch_norm, prune, quantize_aware,
                                sparsity_masks, strip_clustering, strip_pruning)
from mobilekit.optimize.distill import Distiller
from mobilekit.recipes import PRESETS, PRESETS_DIR, Recipe
from mobilekit.tflite_file import TfliteFile

MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
KW = {"batch_norm": True, "classifier_relu": False}


def cli(*args):
    return subprocess.run([MOBILEKIT, *map(str, args)], capture_output=True, text=True, timeout=900)


def eager_fit(model, x, y, steps=2, callbacks=()):
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", run_eagerly=True)
    model.fit(x[:16 * steps], y[:16 * steps], batch_size=16, epochs=1, verbose=0, callbacks=list(callbacks))


@pytest.fixture(scope="module")
def data(fashion_small):
    from mobilekit.data import to_float

    return to_float(fashion_small.x_train[:64]), fashion_small.y_train[:64]


def test_presets_equal_their_json_files():
    files = {p.stem: Recipe.from_json(json.loads(p.read_text())) for p in PRESETS_DIR.glob("*.json")}
    assert files == PRESETS
    assert {"int8-ptq", "int8-qat", "prune-int8", "prune-2of4-int8", "cluster-int8", "deep-compression"} <= set(PRESETS)


def test_bad_recipes_are_one_line_errors():
    for args, needle in ((["--recipe", "zip"], "unknown recipe 'zip'; choose from int8-ptq"),
                         (["--recipe", "prune-2of4-int8", "--sparsity", "0.5"], "magnitude (sparsity) or m-by-n"),
                         (["--recipe", "cluster-int8", "--qat"], "per-tensor weight scales apply to post-training"),
                         (["--clusters", "1"], "clusters must be an int in [2, 256]"),
                         (["--teacher", "resnet50"], "unknown arch 'resnet50'"),
                         (["--distill-alpha", "1.5"], "distill_alpha must be a number in [0, 1]")):
        r = cli("build", *args, "--limit-train", "10", "--out", "/nonexistent-never-written")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert needle in r.stderr, (needle, r.stderr)
    with pytest.raises(mobilekit.MobilekitError, match="m_by_n must be two ints"):
        Recipe("x", "y", m_by_n=(4, 2))


@pytest.mark.slow  # trains (a few steps): the full lane (CI) runs it
@pytest.mark.parametrize("recipe", ["int8-ptq", "int8-qat"])
def test_plain_int8_recipes_give_dense_full_int8_files(recipe, data):
    x, y = data
    model = mobilekit.create("squeezenet1_1", input_shape=x.shape[1:], classes=10, **KW)
    if PRESETS[recipe].qat:
        model = quantize_aware(model, preserve_sparsity=False)
        eager_fit(model, x, y)
    f = TfliteFile(convert_int8(model, x[:8]))
    assert f.float_problems() == []
    assert all(v["sparsity"] < 0.05 for v in f.weight_sparsity().values())


@pytest.mark.slow  # trains (a few steps): the full lane (CI) runs it
def test_2of4_recipe_leaves_two_zeros_in_every_four_input_channel_weights(data):
    x, y = data
    model = mobilekit.create("squeezenet1_1", input_shape=x.shape[1:], classes=10, **KW)
    pruned = prune(model, 0.5, end_step=2, m_by_n=PRESETS["prune-2of4-int8"].m_by_n)
    eager_fit(pruned, x, y, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = strip_pruning(pruned)
    qat = quantize_aware(stripped, preserve_sparsity=True)
    f = TfliteFile(convert_int8(qat, x[:8]))
    layers = f.weight_sparsity()
    patterned = [v for v in layers.values() if v["two_of_four"] is not None]
    assert len(patterned) == len(layers) - 1  # all but the RGB stem (3 input channels)
    assert all(v["two_of_four"] == 1.0 for v in patterned), [v["two_of_four"] for v in patterned]
    assert set(sparsity_masks(stripped)) >= {"fire2_squeeze1x1", "conv10"}


@pytest.mark.slow  # trains (a few steps): the full lane (CI) runs it
def test_cluster_recipe_keeps_at_most_16_values_per_tensor_only_with_per_tensor_scales(data):
    x, y = data
    model = mobilekit.create("squeezenet1_1", input_shape=x.shape[1:], classes=10, **KW)
    eager_fit(model, x, y)  # BN statistics away from their initial values
    plain = fold_batch_norm(model, "squeezenet1_1", KW)
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in plain.layers)
    np.testing.assert_allclose(plain(x[:8]).numpy(), model(x[:8], training=False).numpy(), atol=2e-5)
    spec = PRESETS["cluster-int8"]
    clustered = strip_clustering(cluster(plain, spec.clusters, preserve_sparsity=False))
    per_tensor = TfliteFile(convert_int8(clustered, x[:8], per_tensor_weights=spec.per_tensor_weights))
    assert max(v["distinct_values"] for v in per_tensor.weight_sparsity().values()) <= spec.clusters
    per_channel = TfliteFile(convert_int8(clustered, x[:8]))  # why the recipe stores per-tensor scales
    assert max(v["distinct_values"] for v in per_channel.weight_sparsity().values()) > 2 * spec.clusters


@pytest.mark.slow
def test_qat_ranges_start_where_the_float_layers_outputs_are_not_at_tfmots_six():
    """tfmot starts every activation range at [-6, 6] (and the input's at [0, 0]); calibrate_ranges starts each at its
    float layer's min-max on images: a linear output wider than 6 is no longer clipped, and the QAT model computes the
    float model's function before any step (output SQNR against float, measured 14 dB against -15 dB)."""
    from mobilekit.optimize import calibrate_ranges

    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 3))
    r = keras.layers.ReLU(6.0, name="relu")(keras.layers.BatchNormalization()(keras.layers.Conv2D(
        8, 3, use_bias=False)(keras.layers.Rescaling(2.0, -1.0)(i))))
    wide = keras.layers.BatchNormalization(name="wide")(keras.layers.Conv2D(
        8, 1, use_bias=False, kernel_initializer=keras.initializers.RandomNormal(stddev=5))(r))
    model = keras.Model(i, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([wide, r]))))
    images = np.random.default_rng(0).random((64, 8, 8, 3)).astype(np.float32)
    reference = model.predict(images, verbose=0)
    for _ in range(2):  # a process's second QAT model numbers its input layer (quantize_layer_1)
        qat = quantize_aware(model, preserve_sparsity=False)
        untouched = qat.predict(images, verbose=0)
        assert calibrate_ranges(qat, model, images) == 7  # input, Rescaling (a depthwise), ReLU, wide, Add, pool, Dense
    ranges = {w.name.split(":")[0].split("/")[-1] if "quantize_layer" in w.name else w.name.split(":")[0]:
              float(w.numpy().ravel()[0]) for layer in qat.layers for w in layer.non_trainable_weights
              if w.name.endswith(("_min:0", "_max:0")) and "kernel" not in w.name}
    wide_out = keras.Model(model.input, model.get_layer("wide").output)(images).numpy()
    assert ranges["quant_wide/output_min"] == pytest.approx(wide_out.min()) and wide_out.min() < -6  # not clipped
    assert ranges["quant_relu/output_min"] == 0.0
    assert ranges[f"{qat.layers[1].name}_max"] == pytest.approx(images.max())  # the input's, not [0, 0]

    def sqnr(y):
        return 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - y) ** 2))

    assert sqnr(qat.predict(images, verbose=0)) > 10 > 0 > sqnr(untouched)


def test_keep_clusters_reties_shared_weights_to_their_mean_and_pins_zeros():
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(4,), name="fc")])
    kernel = np.array([[0, 1, 1], [2, 0, 2], [1, 2, 0], [0, 0, 1]], np.float32)
    model.layers[0].set_weights([kernel, np.zeros(3, np.float32)])
    labels = cluster_labels(model)["fc"]
    assert labels.min() == -1 and labels.max() == 1 and (labels == -1).sum() == 5
    moved = kernel + np.arange(12, dtype=np.float32).reshape(4, 3) * 0.01  # training pulled them apart
    model.layers[0].set_weights([moved, np.zeros(3, np.float32)])
    keep = KeepClusters({"fc": labels})
    keep.set_model(model)
    keep.apply()
    tied = model.layers[0].kernel.numpy()
    assert (tied[kernel == 0] == 0).all()
    for value in (1, 2):
        np.testing.assert_allclose(tied[kernel == value], moved[kernel == value].mean(), rtol=1e-6)


@pytest.mark.slow  # no training, but tens of seconds: the full lane (CI) runs it
def test_deep_compression_of_imagenet_squeezenet1_0_fits_480_kb(tmp_path):
    r = cli("build", "--arch", "squeezenet1_0", "--recipe", "deep-compression", "--size-only", "--out", tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((tmp_path / "size-report.json").read_text())
    assert report["classes"] == 1000 and report["input_shape"] == [224, 224, 3]
    assert report["weight_params"] == 1_248_424  # the paper's SqueezeNet 1.0
    assert report["sizes"]["int8_gzip_bytes"] <= 480_000, report["sizes"]
    assert report["sparsity"] >= 0.74 and report["max_distinct_per_channel"] <= 17


@pytest.mark.slow  # trains (a few steps): the full lane (CI) runs it
def test_distiller_loss_is_the_hinton_mix_and_the_teacher_stays_frozen(data):
    x, y = data
    student = mobilekit.create("squeezenet1_1", input_shape=x.shape[1:], classes=10, dropout=0, **KW)
    teacher = mobilekit.create("squeezenet1_1", input_shape=x.shape[1:], classes=10, **KW)
    frozen = [w.copy() for w in teacher.get_weights()]
    before = student.get_weights()
    for alpha in (1.0, 0.3):
        d = Distiller(student, teacher, alpha=alpha, temperature=3.0)
        d.compile(keras.optimizers.SGD(0.0), metrics=["accuracy"], run_eagerly=True)  # lr 0: loss of these weights
        loss = float(d.train_on_batch(x[:16], y[:16], return_dict=True)["loss"])
        s, t = student(x[:16], training=True).numpy(), teacher(x[:16], training=False).numpy()
        ce = float(keras.losses.SparseCategoricalCrossentropy()(y[:16], s))

        def soft(p):
            z = np.log(np.maximum(p, 1e-12)) / 3.0
            e = np.exp(z - z.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)

        kl = float(np.mean(np.sum(soft(t) * np.log(soft(t) / soft(s)), axis=1))) * 9.0
        assert loss == pytest.approx(alpha * ce + (1 - alpha) * kl, rel=2e-3), (alpha, loss, ce, kl)
    d.compile(keras.optimizers.Adam(1e-2), metrics=["accuracy"], run_eagerly=True)
    d.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, teacher.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(before, student.get_weights()))


def test_a_recipe_json_file_works_wherever_a_preset_name_does(tmp_path, capsys):
    import json

    from mobilekit import cli
    from mobilekit.errors import MobilekitError
    from mobilekit.pipeline import BuildConfig
    from mobilekit.recipes import PRESETS, Recipe

    mine = {**PRESETS["deep-compression"].to_json(), "name": "dc-8", "clusters": 8}
    path = tmp_path / "dc8.json"
    path.write_text(json.dumps(mine))
    assert Recipe.preset(str(path)) == PRESETS["deep-compression"].replace(name="dc-8", clusters=8)
    cfg = BuildConfig(recipe=str(path))
    assert cfg.spec.clusters == 8 and cfg.prune_epochs == 1.5  # the file's budgets, like a preset's
    for text, needle in (('{"name": "x"}', "needs an object with a name and a summary"), ("[1", "not valid JSON"),
                         (json.dumps({**mine, "clusters": 1}), "clusters must be an int in [2, 256]"),
                         (json.dumps({**mine, "colour": 1}), "unknown field 'colour'")):
        path.write_text(text)
        with pytest.raises(MobilekitError, match=re.escape(needle)):
            Recipe.preset(str(path))
    with pytest.raises(SystemExit) as e:
        cli.main(["build", "--recipe", str(tmp_path / "missing.json")])
    assert e.value.code == 2 and "no such recipe file" in capsys.readouterr().err


@pytest.mark.slow
def test_a_few_step_stage_runs_eagerly_to_the_weights_and_masks_of_a_traced_one(fashion_small, monkeypatch):
    """A stage of at most EAGER_MAX_STEPS optimizer steps runs eagerly (no training function traced): the same
    computation as the traced fit, masks updated every step included, and evaluation afterwards traced again."""
    from mobilekit.backend import tf
    from mobilekit.pipeline import profile, training
    from mobilekit.pipeline.config import BuildConfig

    cfg = BuildConfig(arch="squeezenet1_1", batch_size=16, seed=0)
    x, y = fashion_small.x_train[:64], fashion_small.y_train[:64]
    tf.keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.ReLU()(keras.layers.BatchNormalization()(keras.layers.Conv2D(16, 3, use_bias=False)(inputs)))
    start = keras.Model(inputs, keras.layers.Dense(10, "softmax")(keras.layers.GlobalAveragePooling2D()(h)))

    class Mode(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.add(self.model.run_eagerly)

    results = {}
    for limit in (10 ** 6, 0):  # eager, then traced
        monkeypatch.setitem(training.EAGER_MAX_STEPS, "prune", limit)
        model = keras.models.clone_model(start)
        model.set_weights(start.get_weights())
        pruned = prune(model, 0.5, end_step=3, frequency=1)
        seen, stage = set(), {}
        token = profile.PROFILE.set(stage)
        try:
            n = training.fit(pruned, x, y, cfg, 1.0, 1e-2, "pruning", [tfmot.sparsity.keras.UpdatePruningStep(), Mode()],
                             stage="prune")
        finally:
            profile.PROFILE.reset(token)
        assert n == 4 and seen == {limit > 0} and pruned.run_eagerly is False
        assert stage["eager_fits"] == int(limit > 0) and stage["fits"] == 1
        results[limit] = strip_pruning(pruned).get_weights()
    eager, traced = results[10 ** 6], results[0]
    for a, b in zip(eager, traced):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        assert np.array_equal(a == 0, b == 0)  # the same pruning masks
    assert np.mean(eager[0] == 0) == pytest.approx(0.5, abs=0.01)  # the conv kernel reached its target
