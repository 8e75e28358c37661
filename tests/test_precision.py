"""Mixed precision (mobilekit.precision): a planted quantization fault fixed by keeping its layer in float,
auto's budget, int16x8 in LiteRT, and what a file computes in."""

import numpy as np
import pytest

from mobilekit.convert import convert_float, convert_int8
from mobilekit.errors import MobilekitError
from mobilekit.precision import assign, compare, layer_precisions, match_layers, probabilities
from mobilekit.tflite_file import TfliteFile

pytestmark = pytest.mark.xdist_group("precision")  # one worker builds the module fixture `pairs` for all


def planted_model(fault: bool, seed: int = 0):
    """A small conv net with random weights whose channel 0 of layer ``dead`` is always 0 after its ReLU; with
    ``fault``, layer ``planted`` has weights of 1000 on that channel: nothing changes in float, but each output
    channel's int8 weight scale is set by the 1000 and its real weights round to 0."""
    from mobilekit.backend import keras

    rng = np.random.default_rng(seed)
    L = keras.layers
    x = inp = keras.Input((32, 32, 3), batch_size=1)
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="stem")(x)
    x = L.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="dead")(x)
    x = L.Conv2D(32, 3, padding="same", activation="relu", name="planted")(x)
    x = L.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="after")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    x = L.Dense(10, name="logits")(x)
    model = keras.Model(inp, L.Softmax(name="probs")(x))
    for layer in model.layers:
        if layer.get_weights():
            w, b = layer.get_weights()
            w = rng.normal(0, np.sqrt(2 / np.prod(w.shape[:-1])), w.shape) * (4 if layer.name == "logits" else 1)
            layer.set_weights([w.astype(np.float32), rng.normal(0, 0.05, b.shape).astype(np.float32)])
    w, b = model.get_layer("dead").get_weights()
    w[..., 0], b[0] = 0.0, -1.0
    model.get_layer("dead").set_weights([w, b])
    if fault:
        w, b = model.get_layer("planted").get_weights()
        w[1, 1, 0, :] = 1000.0
        model.get_layer("planted").set_weights([w, b])
    return model


def images(rng, n):
    """Noise images with a per-image colour cast, so the random net's answers differ from image to image."""
    return (rng.random((n, 32, 32, 3)) * rng.uniform(0, 1, (n, 1, 1, 3))).astype(np.float32)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(1)
    calibration, held_out = images(rng, 64), images(rng, 300)
    out = {}
    for fault in (False, True):
        model = planted_model(fault)
        out[fault] = (convert_int8(model, calibration), convert_float(model))
    return out, calibration, held_out


def test_keep_float_of_the_planted_layer_restores_agreement(pairs):
    files, calibration, held_out = pairs
    int8, ref = files[True]
    p_float = probabilities(ref, held_out)
    broken = compare(probabilities(int8, held_out), p_float)
    assert broken["output_sqnr_db"] < 10  # the fault ruins the int8 file's outputs
    fixed, section = assign(int8, ref, calibration, held_out, keep_float=("plant*",))
    measured = compare(probabilities(fixed, held_out), p_float)
    assert measured["output_sqnr_db"] > broken["output_sqnr_db"] + 20
    assert measured["top1_agreement"] >= 0.98 > broken["top1_agreement"]
    assert section["layers"]["planted"] == "float" and section["explicit"] == {"planted": "float"}
    assert [k for k, v in section["layers"].items() if v != "int8"] == ["planted"]
    assert section["ops"]["float"] == 1 and section["ops"]["conversions"] == 2 and not section["full_int8"]
    f = TfliteFile(fixed)
    assert (f.inputs[0].dtype, f.outputs[0].dtype) == ("INT8", "INT8")  # the app's contract is unchanged


def test_auto_lifts_the_planted_layer_and_nothing_else(pairs):
    files, calibration, held_out = pairs
    int8, ref = files[True]
    lines = []
    chosen, section = assign(int8, ref, calibration, held_out, precision="auto", budget=1.0, say=lines.append)
    assert section["lifted"] == ["planted"], section["steps"]
    assert section["chosen"]["top1_agreement"] >= 0.99
    assert section["int8"]["top1_agreement"] < 0.99  # the converter's file did not meet the budget
    assert chosen != int8 and section["budget"] == {"max_agreement_drop_points": 1.0}
    assert any("planted -> float" in line and "x int8's host time" in line for line in lines)
    assert section["steps"][0]["lift"] == "planted" and section["steps"][0]["host_time_vs_int8"] > 0


def test_auto_with_a_budget_already_met_lifts_nothing_and_keeps_the_int8_bytes(pairs):
    files, calibration, held_out = pairs
    int8, ref = files[False]
    default, plain = assign(int8, ref, calibration, held_out)  # precision int8
    chosen, section = assign(int8, ref, calibration, held_out, precision="auto", budget=2.0)
    assert chosen == default == int8
    assert section["lifted"] == [] and section["steps"] == [] and section["full_int8"] and plain["full_int8"]
    assert section["quantizer"] == "TFLite converter"


def test_auto_refuses_a_budget_no_assignment_meets(pairs):
    files, calibration, held_out = pairs
    int8, ref = files[True]
    with pytest.raises(MobilekitError, match="no precision assignment meets the budget") as e:
        assign(int8, ref, calibration, held_out, precision="auto", min_output_sqnr=149.0, say=lambda _: None)
    assert "the int8 output's own rounding allows" in str(e.value)


def test_the_output_floor_is_the_float_answers_rounded_to_the_int8_output(pairs):
    from mobilekit.precision import output_floor

    files, _, held_out = pairs
    int8, ref = files[False]
    p_float = probabilities(ref, held_out)
    floor = output_floor(int8, p_float)
    assert 0.9 <= floor["top1_agreement"] <= 1.0 and 30 < floor["output_sqnr_db"] < 150
    # Class 1 leads by less than the output's 1/256 step: both round to the same int8 value, argmax takes class 0.
    tie = np.array([[0.5 - 1e-4, 0.5] + [0.0] * 8, [0.1, 0.9] + [0.0] * 8], np.float32)
    assert output_floor(int8, tie)["top1_agreement"] == 0.5
    assert output_floor(ref, p_float)["top1_agreement"] == 1.0  # a float output rounds nothing


def test_int16x8_runs_in_litert_with_int16_activations(pairs):
    files, calibration, held_out = pairs
    int8, ref = files[False]
    content, section = assign(int8, ref, calibration, held_out, precision="int16x8")
    assert section["io"] == ["int16", "int16"] and section["ops"]["int8"] == 0 and section["ops"]["int16"] == 7
    measured = compare(probabilities(content, held_out), probabilities(ref, held_out))  # it runs in LiteRT
    assert measured["top1_agreement"] >= 0.95, measured
    assert layer_precisions(content) == {k: section[k] for k in ("full_int8", "io", "ops", "layers")}


def test_int16_names_a_layer_and_the_names_are_checked(pairs):
    files, calibration, held_out = pairs
    int8, ref = files[False]
    content, section = assign(int8, ref, calibration, held_out, int16=("after",))
    assert section["layers"]["after"] == "int16" and section["layers"]["stem"] == "int8"
    assert section["quantizer"].startswith("ai-edge-quantizer")
    with pytest.raises(MobilekitError, match="--keep-float 'block_99' matches no layer"):
        assign(int8, ref, calibration, held_out, keep_float=("block_99",))
    assert match_layers(["*"], ["a", "b"], "int16") == ["a", "b"]
