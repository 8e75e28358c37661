"""Export-time graph rewrites (mobilekit.rewrites): each exact in float, int8 checked on real photos,
the ops it removes gone from the file, refusals with their reasons, and `mobilekit export tflite`."""

import json
from collections import Counter

import numpy as np
import pytest

import mobilekit
from mobilekit.cli import main
from mobilekit.convert import convert_float, convert_int8
from mobilekit.errors import MobilekitError
from mobilekit.litert import make_interpreter
from mobilekit.recipes import Recipe
from mobilekit.rewrites import REWRITES, check_exact, rewrite
from mobilekit.tflite_file import TfliteFile


def ops(content: bytes) -> Counter:
    return Counter(op.name for op in TfliteFile(content).ops)


def run_int8(content: bytes, images_float: np.ndarray) -> np.ndarray:
    interp = make_interpreter(content)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    rows = []
    for x in images_float:
        q = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q[None])
        interp.invoke()
        rows.append(interp.get_tensor(out["index"])[0].astype(np.int32))
    return np.stack(rows)


@pytest.fixture(scope="module")
def photos():
    from mobilekit.photos import load_photos

    _, images = load_photos(64)
    return images.astype(np.float32) / 255.0


def applied(log, name):
    return [e for e in log if e["rewrite"] == name and e["applied"]]


@pytest.mark.slow
def test_pad_fold_is_checked_on_each_output_of_a_two_output_detector():
    """SqueezeDet on SqueezeNet 1.0 ends in two outputs (deltas, class logits): the exactness check compares each
    against its own scale, and a changed output is still caught."""
    model = mobilekit.create("squeezedet", input_shape=(128, 128, 3), classes=3, backbone="squeezenet1_0")
    export, log = rewrite(model, ("pad-fold",))
    assert applied(log, "pad-fold") and len(export.outputs) == 2
    assert check_exact(model, export) < 1e-5
    head = export.get_layer("convdet_scores")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias + 1.0])
    with pytest.raises(MobilekitError, match="graph rewrite changed the model's outputs"):
        check_exact(model, export)


@pytest.mark.slow
def test_pad_fold_removes_the_ceil_mode_pool_pad_exactly():
    model = mobilekit.create("squeezenet1_0", input_shape=(224, 224, 3), classes=10)
    export, log = rewrite(model, ("pad-fold",))
    assert [e["layer"] for e in applied(log, "pad-fold")] == ["pool4_pad"]
    assert export.get_layer("pool4").padding == "same" and model.get_layer("pool4").padding == "valid"
    assert check_exact(model, export) < 1e-5
    assert ops(convert_float(model))["PAD"] == 1 and ops(convert_float(export))["PAD"] == 0
    # The trained model is untouched: same layers, same params.
    assert "pool4_pad" in [layer.name for layer in model.layers]
    assert export.count_params() == model.count_params()


def test_pad_fold_refuses_a_pool_whose_input_can_be_negative():
    from mobilekit.backend import keras

    x = keras.Input((9, 9, 2))
    y = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)  # no ReLU: can be negative
    y = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(y)
    y = keras.layers.MaxPooling2D(3, 2, name="pool")(y)
    model = keras.Model(x, y)
    export, log = rewrite(model, ("pad-fold",))
    assert export is model
    assert log == [{"rewrite": "pad-fold", "layer": "pad", "applied": False,
                    "reason": "the pooled input can be negative"}]


@pytest.mark.slow  # three conversions of a MobileNetV2 (6.5 s): the full lane (CI) runs it
def test_pad_grow_folds_symmetric_stride2_padding_into_a_grown_kernel():
    model = mobilekit.create("mobilenet_v2", input_shape=(64, 64, 3), classes=10, padding="symmetric",
                             alpha=0.35)
    assert rewrite(model, ("pad-fold",))[0] is model  # "same" pads one row fewer at the top: no plain fold
    export, log = rewrite(model, ("pad-grow",))
    grown = applied(log, "pad-grow")
    assert len(grown) == 5 and all(e["kernel"] == [4, 4] for e in grown)
    assert check_exact(model, export) < 1e-5
    assert ops(convert_float(export))["PAD"] == 0 < ops(convert_float(model))["PAD"]


@pytest.mark.slow
def test_space_to_depth_stem_is_exact_in_float_and_int8_on_photos(photos):
    model = mobilekit.create("squeezenet1_1", input_shape=(64, 64, 3), classes=10)
    export, log = rewrite(model, ("space-to-depth-stem",))
    (entry,) = applied(log, "space-to-depth-stem")
    assert entry["kernel"] == [2, 2] and entry["input_channels"] == 12
    assert check_exact(model, export) < 1e-5
    calibration = photos[:8]
    before, after = convert_int8(model, calibration), convert_int8(export, calibration)
    assert ops(after)["SPACE_TO_DEPTH"] == 1 and ops(before)["SPACE_TO_DEPTH"] == 0
    # Same int8 weights (the new kernel holds the same values and zeros): outputs within 1 LSB on photos.
    a, b = run_int8(before, photos), run_int8(after, photos)
    assert np.abs(a - b).max() <= 1
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.9


@pytest.mark.parametrize("padding", ["valid", "same", "pad"])
def test_normalization_fold_is_exact_with_a_mean_colour_border_where_the_conv_pads(padding):
    from mobilekit.backend import keras

    x = keras.Input((16, 16, 3))
    y = keras.layers.Rescaling([2.0, 3.0, 4.0], [-1.0, -0.5, 0.25], name="normalize")(x)
    if padding == "pad":
        y = keras.layers.ZeroPadding2D(1, name="conv1_pad")(y)
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same" if padding == "same" else "valid", use_bias=False,
                            name="conv1")(y)
    model = keras.Model(x, keras.layers.GlobalAveragePooling2D()(y))
    export, log = rewrite(model, ("normalization-fold",))
    (entry,) = applied(log, "normalization-fold")
    # "same" on 16 with stride 2 pads (0, 1); the explicit (1, 1) pad's last row is never read.
    assert entry.get("border") == {"valid": None, "same": [[0, 1], [0, 1]], "pad": [[1, 0], [1, 0]]}[padding]
    assert check_exact(model, export) < 1e-5
    counts = ops(convert_float(export))
    assert counts["MUL"] == counts["ADD"] == counts["PAD"] == 0 < ops(convert_float(model))["MUL"]
    assert counts["CONCATENATION"] == (0 if padding == "valid" else 2)


@pytest.mark.slow  # every rewrite and conversion (4 s): the full lane (CI) runs it
def test_all_rewrites_together_on_the_torchvision_layout_stay_exact():
    from mobilekit.archs.mobilenet import TORCH_IMAGENET_NORMALIZATION

    model = mobilekit.create("mobilenet_v2", input_shape=(64, 64, 3), classes=10, padding="symmetric", alpha=0.35,
                             normalization=TORCH_IMAGENET_NORMALIZATION)
    export, log = rewrite(model, REWRITES)
    done = {e["rewrite"] for e in log if e["applied"]}
    # The folded stem reads a 65x65 bordered input: no space-to-depth there, the depthwise pads grown.
    assert done == {"normalization-fold", "pad-grow"}
    assert check_exact(model, export) < 1e-5
    counts = ops(convert_float(export))
    assert counts["PAD"] == counts["MUL"] == 0 and counts["CONCATENATION"] == 2


def test_check_exact_catches_a_wrong_rewrite():
    model = mobilekit.create("squeezenet1_1", input_shape=(48, 48, 3), classes=10)
    export, _ = rewrite(model, ("space-to-depth-stem",))
    w = export.get_layer("conv1").get_weights()
    export.get_layer("conv1").set_weights([w[0][::-1], *w[1:]])
    with pytest.raises(MobilekitError, match="changed the model's outputs"):
        check_exact(model, export)


def test_recipe_rewrites_are_validated():
    assert Recipe.preset("prune-int8").rewrites == ("pad-fold", "normalization-fold")
    with pytest.raises(MobilekitError, match="'space-to-depth-stem' changes kernels"):
        Recipe.preset("prune-int8").replace(rewrites=("space-to-depth-stem",))
    with pytest.raises(MobilekitError, match="unknown graph rewrite 'pad'"):
        Recipe.preset("int8-ptq").replace(rewrites=("pad",))
    ptq = Recipe.preset("int8-ptq").replace(rewrites=tuple(REWRITES))
    assert Recipe.from_json(json.loads(json.dumps(ptq.to_json()))) == ptq


@pytest.mark.slow  # three SqueezeNet exports at 224 (seconds each): the full lane (CI) runs it
def test_export_tflite_writes_both_files_through_the_rewrites(tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "tflite", "--arch", "squeezenet1_0", "--input-size", "224", "--classes", "10",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "export.json").read_text())
    float_bytes = (out / "squeezenet1_0_float.tflite").read_bytes()
    int8_bytes = (out / "squeezenet1_0_int8.tflite").read_bytes()
    assert doc["files"]["int8"]["bytes"] == len(int8_bytes) and doc["files"]["float"]["bytes"] == len(float_bytes)
    assert TfliteFile(int8_bytes).float_problems() == []
    assert ops(int8_bytes)["PAD"] == 0 and [e["layer"] for e in doc["rewrites"]["log"]] == ["pool4_pad"]
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "squeezenet1_0_float.tflite",
                                                     "squeezenet1_0_int8.tflite"]
    assert "pool4_pad" in capsys.readouterr().out
    assert main(["export", "tflite", "--arch", "squeezenet1_0", "--input-size", "224", "--classes", "10",
                 "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "squeezenet1_0_int8.tflite").read_bytes() == int8_bytes  # seeded: the same bytes
    assert main(["export", "tflite", "--arch", "squeezenet1_0", "--input-size", "224", "--classes", "10",
                 "--out", str(out), "--rewrites", "none"]) == 0
    assert ops((out / "squeezenet1_0_int8.tflite").read_bytes())["PAD"] == 1
