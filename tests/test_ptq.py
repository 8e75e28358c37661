"""Post-training quantisation options: range methods from calibration histograms, bias correction."""

import numpy as np
import pytest

import mobilekit
from mobilekit.backend import keras
from mobilekit.errors import MobilekitError
from mobilekit.convert import calibrated, convert_ptq
from mobilekit.ptq import BINS, bias_correct, choose_range
from mobilekit.layer_map import output_key
from mobilekit.numerics import reference_interpreter


def test_range_methods_clip_outliers_and_minmax_keeps_the_range():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(1.0, 0.3, 100_000).clip(0), [40.0]])  # one outlier at 40
    hist = np.histogram(values, BINS, (0.0, 40.0))[0]
    assert choose_range(hist, 0.0, 40.0, "minmax") == (0.0, 40.0)
    lo, hi = choose_range(hist, 0.0, 40.0, "percentile")
    assert lo == 0.0 and 2.0 < hi < 5.0  # the 99.99th percentile of the bulk, not the outlier
    lo, hi = choose_range(hist, 0.0, 40.0, "mse")
    assert lo == 0.0 and hi < 40.0  # a clipped range beats spending 255 steps on one value


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="fc")(x)
    model = keras.Model(inputs, outputs)
    w, b = model.get_layer("conv").get_weights()
    w = w + rng.normal(0, 0.05, w.shape)
    w[0, 0, 0, 0] = 4.0  # an outlier: one scale for the tensor rounds every other weight coarsely
    model.get_layer("conv").set_weights([w, b])
    w, b = model.get_layer("fc").get_weights()
    model.get_layer("fc").set_weights([w, rng.normal(0, 0.1, b.shape)])  # a zero bias is dropped by the converter
    images = (rng.random((64, 8, 8, 3)) * 0.5 + 0.5).astype(np.float32)  # inputs with a large mean
    return model, images


def test_minmax_without_bias_correction_is_the_converters_own_file(small):
    from mobilekit.convert import convert_int8

    model, images = small
    assert convert_ptq(model, images)[0] == convert_int8(model, images)


@pytest.mark.parametrize("method", ["percentile", "mse"])
def test_other_range_methods_give_a_full_int8_file_with_clipped_ranges(small, method):
    from mobilekit.tflite_file import TfliteFile

    model, images = small
    content, done = convert_ptq(model, images, method)
    assert TfliteFile(content).float_problems() == [] and done["calibration"] == method
    assert done["ranges"]["tensors"] >= 2 and done["ranges"]["clipped"] >= 1


def _conv_mean_error(content: bytes, float_content: bytes, images) -> float:
    """Mean over channels of |E[int8 conv output] - E[float conv output]| on ``images``."""
    q, f = reference_interpreter(content), reference_interpreter(float_content)

    def conv_tensor(it):
        return next(d["index"] for d in it.get_tensor_details() if output_key(d["name"]) == "conv"
                    and list(d["shape"]) == [1, 8, 8, 16])  # the op's output, not its weights

    qt, ft = conv_tensor(q), conv_tensor(f)
    q_detail = next(d for d in q.get_tensor_details() if d["index"] == qt)
    scale, zero_point = q_detail["quantization"]
    diffs = []
    for image in images:
        x = image[None]
        qi = q.get_input_details()[0]
        q.set_tensor(qi["index"], np.clip(np.round(x / qi["quantization"][0] + qi["quantization"][1]), -128,
                                          127).astype(np.int8))
        f.set_tensor(f.get_input_details()[0]["index"], x)
        q.invoke()
        f.invoke()
        diffs.append(((q.get_tensor(qt).astype(np.float64) - zero_point) * scale - f.get_tensor(ft)).mean(axis=(0, 1, 2)))
    return float(np.abs(np.mean(diffs, axis=0)).mean())


def test_bias_correction_removes_the_mean_output_shift_of_coarse_weights(small):
    model, images = small
    coarse, _ = convert_ptq(model, images, per_tensor_weights=True)  # one scale per tensor: coarse rounding
    reference = calibrated(model, images)
    corrected, done = bias_correct(coarse, reference, images)
    assert done["layers"] == 2  # the conv and the dense layer
    before, after = _conv_mean_error(coarse, reference, images), _conv_mean_error(corrected, reference, images)
    assert after < 0.5 * before, (before, after)


def test_ptq_options_belong_to_post_training_recipes():
    from mobilekit.pipeline import BuildConfig
    from mobilekit.recipes import Recipe

    with pytest.raises(MobilekitError, match="post-training quantization only"):
        Recipe.preset("int8-qat").replace(calibration="mse")
    cfg = BuildConfig(recipe="int8-ptq", calibration="mse", bias_correction=True)
    assert cfg.spec.calibration == "mse" and cfg.spec.bias_correction
    assert BuildConfig(arch="mobilenet_v2", weights="imagenet", calibration="percentile").calibration == "percentile"
    with pytest.raises(MobilekitError, match="calibration must be one of"):
        BuildConfig(recipe="int8-ptq", calibration="kl")
    assert mobilekit.recipes.PRESETS["int8-ptq"].calibration == "minmax"


def test_bias_correction_handles_grouped_convolutions():
    """ShuffleNet v1's grouped 1x1 convs: each group's outputs see only their group's input channels."""
    rng = np.random.default_rng(2)
    inputs = keras.Input((6, 6, 6))
    x = keras.layers.Conv2D(12, 1, groups=3, name="grouped")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="fc")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    w, b = model.get_layer("grouped").get_weights()
    model.get_layer("grouped").set_weights([w, rng.normal(0, 0.1, b.shape)])
    w, b = model.get_layer("fc").get_weights()
    model.get_layer("fc").set_weights([w, rng.normal(0, 0.1, b.shape)])
    images = rng.random((16, 6, 6, 6)).astype(np.float32)
    content, done = convert_ptq(model, images, bias_correction=True)
    assert done["bias_correction"]["layers"] == 2


@pytest.fixture(scope="module")
def pruned_channel():
    """A conv + BatchNormalization whose output channel 2 was pruned whole (its kernel all zero) and whose folded
    bias (3.0) keeps it a constant the next layers read, through QAT (post-training quantization gives such a
    channel a weight scale its bias fits)."""
    from mobilekit.convert import convert_float, convert_int8
    from mobilekit.optimize import calibrate_ranges, float_twin, quantize_aware

    rng = np.random.default_rng(2)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(4, name="fc")(x)
    model = keras.Model(inputs, outputs)
    w = rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32)
    w[..., 2] = 0.0
    model.get_layer("conv").set_weights([w])
    beta = np.full(8, 0.1, np.float32)
    beta[2] = 3.0
    model.get_layer("bn").set_weights([np.ones(8, np.float32), beta, np.zeros(8, np.float32), np.ones(8, np.float32)])
    model.get_layer("fc").set_weights([rng.normal(0, 0.5, (8, 4)).astype(np.float32), np.full(4, 0.05, np.float32)])
    images = rng.random((32, 8, 8, 3)).astype(np.float32)
    qat = quantize_aware(model)  # QAT's weight ranges: the converter takes them as they are
    calibrate_ranges(qat, model, images)
    qat(images[:4], training=True)  # a training step's weight ranges: [0, 0] for the pruned channel
    return model, images, convert_int8(qat, images), convert_float(float_twin(qat, model) or model)


def _conv_layer(content: bytes):
    from mobilekit.tflite_file import TfliteFile

    f = TfliteFile(content)
    op = next(op for op in f.ops if op.name == "CONV_2D")
    return [f.tensors[i] for i in op.inputs]


def _output_error(content: bytes, reference: bytes, images) -> float:
    """The int8 file's largest output error against its float reference file, in units of its output scale."""
    from mobilekit.litert import outputs_on
    from mobilekit.tflite_file import TfliteFile

    scale = float(TfliteFile(content).outputs[0].scale[0])
    got, want = outputs_on(content, images[:8]), outputs_on(reference, images[:8])
    return max(float(np.abs(g[0] - w[0]).max()) for g, w in zip(got, want)) / scale


def test_a_pruned_channels_saturated_bias_is_repaired_from_the_float_file(pruned_channel):
    from mobilekit.ptq import INT32_MAX, repair_saturated_biases

    model, images, int8, float_bytes = pruned_channel
    _, w, b = _conv_layer(int8)
    # The converter's own file from QAT: the zero channel's tiny weight scale puts its bias beyond int32, saturated.
    assert w.scale[2] < 1e-6 and abs(int(b.data[2])) >= INT32_MAX
    assert _output_error(int8, float_bytes, images) > 20
    repaired, log = repair_saturated_biases(int8, float_bytes)
    assert log == [{"rewrite": "bias-range", "layer": "relu", "applied": True, "channels": [2], "zero_channels": 1}]
    _, w2, b2 = _conv_layer(repaired)
    assert not np.any(w2.data[..., 2] if w2.data.shape[-1] == 8 else w2.data[2])  # zeros stay zeros
    others = [c for c in range(8) if c != 2]
    assert np.array_equal(w2.scale[others], w.scale[others]) and np.array_equal(b2.data[others], b.data[others])
    assert abs(int(b2.data[2])) <= 2**30 and np.isclose(b2.data[2] * b2.scale[2], 3.0, rtol=1e-6)
    assert _output_error(repaired, float_bytes, images) <= 2  # the int8 file's rounding, not a wrong constant
    assert repair_saturated_biases(repaired, float_bytes) == (repaired, [])  # nothing left: the same bytes


def test_a_file_without_saturated_biases_comes_back_byte_for_byte(small):
    from mobilekit.convert import convert_float, convert_int8
    from mobilekit.ptq import repair_saturated_biases

    model, images = small
    int8 = convert_int8(model, images)
    assert repair_saturated_biases(int8, convert_float(model)) == (int8, [])
