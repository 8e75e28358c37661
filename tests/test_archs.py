"""Registry and SqueezeNet builder: names, paper parameter counts, validation."""

import numpy as np
import pytest

import mobilekit
from mobilekit import archs
from mobilekit.complexity import complexity
from mobilekit.archs.squeezenet import fire_widths
from mobilekit.errors import MobilekitError


def test_registry_lists_and_resolves():
    assert {"squeezenet1_0", "squeezenet1_1"} <= set(mobilekit.list_archs())
    assert mobilekit.list_archs("squeezenet1_*") == ["squeezenet1_0", "squeezenet1_1"]
    assert archs.resolve("squeezenet") == "squeezenet1_1"


def test_unknown_keyword_is_named_not_a_type_error():
    with pytest.raises(MobilekitError, match=r"mobilenet_v2 has no metaparameter 'groups'; it takes: .*alpha"):
        mobilekit.create("mobilenet_v2", groups=3)


def test_unknown_arch_lists_valid_names():
    with pytest.raises(MobilekitError, match=r"unknown arch 'resnet'.*squeezenet1_0.*squeezenet1_1"):
        mobilekit.create("resnet")


@pytest.mark.parametrize("name, params", [("squeezenet1_0", 1_248_424), ("squeezenet1_1", 1_235_496)])
def test_squeezenet_params_match_paper(name, params):
    assert mobilekit.create(name).count_params() == params


@pytest.mark.parametrize("name, low, high", [("squeezenet1_0", 0.80e9, 0.86e9),
                                             ("squeezenet1_1", 0.33e9, 0.37e9)])
def test_squeezenet_macs_near_paper(name, low, high):
    macs = complexity(mobilekit.create(name))["macs"]
    assert low <= macs <= high, macs


def test_squeezenet_1_1_computes_about_2_4x_less_than_1_0():
    ratio = (complexity(mobilekit.create("squeezenet1_0"))["macs"]
             / complexity(mobilekit.create("squeezenet1_1"))["macs"])
    assert 2.2 < ratio < 2.6, ratio


def test_fire_widths_follow_metaparameters():
    widths = fire_widths(128, 128, 2, 0.5, 0.125)
    assert widths[0] == (16, 64, 64)
    assert widths[2] == (32, 128, 128)
    assert widths[7] == (64, 256, 256)
    # SR 0.75 (the paper's 19 MB design point) widens only the squeeze layers.
    assert [s for s, _, _ in fire_widths(128, 128, 2, 0.5, 0.75)] == [96, 96, 192, 192, 288, 288, 384, 384]


def test_small_model_shapes_names_and_classes():
    model = mobilekit.create("squeezenet", input_shape=(48, 48, 3), classes=7, batch_norm=True)
    names = {layer.name for layer in model.layers}
    assert {"conv1", "conv1_bn", "fire2_squeeze1x1", "fire9_expand3x3", "conv10", "predictions"} <= names
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    out = model(np.random.default_rng(0).random((2, 48, 48, 3), np.float32)).numpy()
    assert out.shape == (2, 7)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_batch_norm_folds_to_paper_weight_count():
    plain = mobilekit.create("squeezenet1_1", input_shape=(64, 64, 3), classes=10)
    bn = mobilekit.create("squeezenet1_1", input_shape=(64, 64, 3), classes=10, batch_norm=True)
    conv_params = lambda m: sum(int(np.prod(w.shape)) for l in m.layers  # noqa: E731
                                if type(l).__name__ == "Conv2D" for w in l.weights)
    # With BN the convs drop their bias; folding BN gives it back: same count as the paper model.
    n_convs = sum(type(l).__name__ == "Conv2D" for l in plain.layers)
    bn_biases = sum(l.filters for l in bn.layers if type(l).__name__ == "Conv2D" and not l.use_bias)
    assert conv_params(bn) + bn_biases == conv_params(plain)
    assert n_convs == 26


def test_include_top_false_and_pooling():
    model = mobilekit.create("squeezenet1_0", input_shape=(96, 96, 3), include_top=False, pooling="avg")
    assert model.output_shape == (None, 512)
    model = mobilekit.create("squeezenet1_0", input_shape=(96, 96, 3), include_top=False)
    assert len(model.output_shape) == 4


def test_bypass_variants_add_residuals():
    simple = mobilekit.create("squeezenet1_0", input_shape=(64, 64, 3), classes=10, bypass="simple")
    complex_ = mobilekit.create("squeezenet1_0", input_shape=(64, 64, 3), classes=10, bypass="complex")
    adds = lambda m: sorted(l.name for l in m.layers if type(l).__name__ == "Add")  # noqa: E731
    assert adds(simple) == ["fire3_bypass", "fire5_bypass", "fire7_bypass", "fire9_bypass"]
    assert len(adds(complex_)) == 8
    # Complex bypass adds 1x1 convs on fire2, 4, 6, 8 (paper: more parameters, same MAC order).
    assert complex_.count_params() > simple.count_params()


@pytest.mark.parametrize("kwargs, message", [
    ({"classes": 0}, r"classes=0"),
    ({"input_shape": (16, 16, 3)}, r"input_shape=\(16, 16, 3\) is too small"),
    ({"input_shape": (64, 64)}, r"input_shape=\(64, 64\)"),
    ({"squeeze_ratio": 0.0}, r"squeeze_ratio=0.0"),
    ({"pct3x3": 1.5}, r"pct3x3=1.5"),
    ({"pct3x3": 1.0}, r"pct3x3=1.0"),
    ({"bypass": "residual"}, r"bypass='residual'"),
    ({"pooling": "sum", "include_top": False}, r"pooling='sum'"),
    ({"dropout": 1.0}, r"dropout=1.0"),
    ({"freq": 0}, r"freq=0"),
    ({"base_e": 128, "incr_e": 64, "freq": 1, "bypass": "simple"}, r"bypass='simple' needs"),
])
def test_invalid_metaparameters_name_the_value(kwargs, message):
    with pytest.raises(MobilekitError, match=message):
        mobilekit.create("squeezenet1_0", **kwargs)


# MobileNet v1, Tables 6-7 of the paper (MACs and trainable params in millions, params at 1%).
@pytest.mark.parametrize("alpha, size, macs_m, params_m", [
    (1.0, 224, 569, 4.24), (0.75, 224, 325, 2.59), (0.5, 224, 149, 1.34), (0.25, 224, 41, 0.47),
    (1.0, 192, 418, None), (1.0, 160, 290, None), (1.0, 128, 186, None),
])
def test_mobilenet_v1_matches_paper(alpha, size, macs_m, params_m):
    info = complexity(mobilekit.create("mobilenet_v1", alpha=alpha, input_shape=(size, size, 3)))
    assert abs(info["macs"] / 1e6 - macs_m) / macs_m <= 0.015, info["macs"]
    if params_m is not None:
        assert abs(info["trainable_params"] / 1e6 - params_m) / params_m <= 0.01, info["trainable_params"]


def test_mobilenet_v2_matches_keras_count_and_paper_macs():
    info = complexity(mobilekit.create("mobilenet_v2"))
    assert info["params"] == 3_538_984 and info["trainable_params"] == 3_504_872
    assert abs(info["macs"] / 1e6 - 300) / 300 <= 0.015, info["macs"]


def test_mobilenet_v2_residuals_and_widths():
    model = mobilekit.create("mobilenet_v2", alpha=0.35, input_shape=(96, 96, 3), classes=5)
    adds = [l.name for l in model.layers if type(l).__name__ == "Add"]
    assert len(adds) == 10  # 17 blocks, 7 of which change shape
    assert model.get_layer("conv1").filters == 16 and model.get_layer("conv_last").filters == 1280
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize("name, kwargs, message", [
    ("mobilenet_v1", {"alpha": 0}, "alpha=0"),
    ("mobilenet_v1", {"depth_multiplier": 0}, "depth_multiplier=0"),
    ("mobilenet_v2", {"alpha": -1.0}, "alpha=-1.0"),
    ("mobilenet_v2", {"input_shape": (16, 16, 3)}, r"input_shape=\(16, 16, 3\) is too small"),
])
def test_mobilenet_invalid_arguments(name, kwargs, message):
    with pytest.raises(MobilekitError, match=message):
        mobilekit.create(name, **kwargs)


# ShuffleNet v1, Tables 1-2 of the paper (MFLOPs = M MACs at 224).
# The fast lane checks g=3 at 1x and the smallest; the full run (CI) the whole table.
@pytest.mark.parametrize("groups, scale, macs_m", [
    (3, 1.0, 137), (3, 0.25, 13),
    *(pytest.param(*row, marks=pytest.mark.slow) for row in
      [(1, 1.0, 143), (2, 1.0, 140), (4, 1.0, 133), (8, 1.0, 137), (3, 0.5, 38), (3, 1.5, 292), (3, 2.0, 524)]),
])
def test_shufflenet_v1_complexity_matches_paper(groups, scale, macs_m):
    macs = complexity(mobilekit.create("shufflenet_v1", groups=groups, scale=scale))["macs"]
    # Within 1.5%, or within the paper's rounding to whole MFLOPs (0.25x: 13).
    assert abs(macs / 1e6 - macs_m) <= max(0.015 * macs_m, 0.5), macs


def test_shufflenet_v1_structure():
    model = mobilekit.create("shufflenet_v1", groups=8, input_shape=(64, 64, 3), classes=10)
    kinds = [type(l).__name__ for l in model.layers]
    assert "Lambda" not in kinds
    units = {l.name.split("_")[0] + "_" + l.name.split("_")[1] for l in model.layers if "_unit" in l.name}
    assert len(units) == 16  # 4 + 8 + 4 units
    assert model.get_layer("stage2_unit1_gconv1").groups == 1  # no group conv on the first pointwise
    assert model.get_layer("stage3_unit2_gconv1").groups == 8
    assert model.get_layer("stage4_unit4_add").output_shape[-1] == 1536
    assert kinds.count("Permute") == 15  # a shuffle in every unit but the first


@pytest.mark.parametrize("kwargs, message", [
    ({"groups": 5}, "groups=5"), ({"scale": 0.75}, "scale=0.75"),
    ({"input_shape": (24, 24, 3)}, "too small"),
])
def test_shufflenet_v1_invalid_arguments(kwargs, message):
    with pytest.raises(MobilekitError, match=message):
        mobilekit.create("shufflenet_v1", **kwargs)


def test_shufflenet_v1_shortcut_pool_is_an_exact_count_include_pad_average():
    from mobilekit.backend import keras, tf
    from mobilekit.archs.shufflenet import average_pool_3x3_s2

    inputs = keras.Input((9, 9, 4))
    pool = keras.Model(inputs, average_pool_3x3_s2(inputs, "pool"))
    x = np.random.default_rng(0).random((2, 9, 9, 4), np.float32)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = tf.nn.avg_pool2d(padded, 3, 2, "VALID").numpy()  # zeros counted, as PyTorch's default
    np.testing.assert_allclose(pool(x).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert pool.trainable_weights == [] and complexity(pool)["macs"] == 0


@pytest.mark.slow  # no training, but tens of seconds; the table's counts above are in the full run (CI)
@pytest.mark.extended
def test_shufflenet_v1_every_groups_and_scale_builds():
    for groups in (1, 2, 3, 4, 8):
        for scale in (0.25, 0.5, 1.0, 1.5, 2.0):
            model = mobilekit.create("shufflenet_v1", groups=groups, scale=scale,
                                     input_shape=(32, 32, 3), classes=3)
            assert model.output_shape == (None, 3), (groups, scale)


# ShuffleNet v2, Table 5: (scale, MFLOPs); trainable parameters are torchvision's
# shufflenet_v2_x{0_5,1_0,1_5,2_0} counts (conv + BN affine + FC), the same graph as Fig. 3.
@pytest.mark.parametrize("scale, macs_m, trainable", [  # the fast lane checks 0.5x; the full run (CI) the table
    (0.5, 41, 1_366_792),
    *(pytest.param(*row, marks=pytest.mark.slow)
      for row in [(1.0, 146, 2_278_604), (1.5, 299, 3_503_624), (2.0, 591, 7_393_996)]),
])
def test_shufflenet_v2_complexity_matches_paper(scale, macs_m, trainable):
    c = complexity(mobilekit.create("shufflenet_v2", scale=scale))
    assert abs(c["macs"] / 1e6 - macs_m) / macs_m <= 0.015, c["macs"]
    assert c["trainable_params"] == trainable


def test_shufflenet_v2_structure():
    model = mobilekit.create("shufflenet_v2", scale=0.5, input_shape=(64, 64, 3), classes=10)
    kinds = [type(l).__name__ for l in model.layers]
    assert "Lambda" not in kinds
    assert kinds.count("ChannelSplit") == 13  # every stride-1 unit: 3 + 7 + 3
    assert kinds.count("Permute") == 16  # a shuffle after every unit
    split = model.get_layer("stage3_unit2_split")
    assert [tuple(s) for s in split.output_shape] == [(None, 4, 4, 48)] * 2
    assert model.get_layer("stage2_unit1_concat").output_shape == (None, 8, 8, 48)
    assert model.get_layer("conv5").output_shape == (None, 2, 2, 1024)


def test_shufflenet_v2_invalid_scale():
    with pytest.raises(MobilekitError, match=r"scale=0.25"):
        mobilekit.create("shufflenet_v2", scale=0.25)
