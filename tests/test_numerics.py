"""`mobilekit numerics`: per-layer int8 error against the float reference, and a planted fault found."""

import json

import numpy as np
import pytest

import mobilekit
from mobilekit.convert import convert_float, convert_int8
from mobilekit.layer_map import output_key
from mobilekit.numerics import first_drop, numerics, op_outputs
from mobilekit.tflite_file import TfliteFile

pytestmark = pytest.mark.xdist_group("numerics")  # one worker builds the module fixture `files` for all


@pytest.fixture(scope="module")
def files():
    """An int8 file and its float reference from one (untrained but calibrated) SqueezeNet 1.1."""
    rng = np.random.default_rng(0)
    model = mobilekit.create("squeezenet1_1", input_shape=(32, 32, 3), classes=10, batch_norm=True,
                             classifier_relu=False)
    calibration = rng.random((32, 32, 32, 3), np.float32)
    return convert_int8(model, calibration), convert_float(model), rng.random((12, 32, 32, 3), np.float32)


def test_every_layer_is_compared_with_finite_numbers(files):
    int8, ref, images = files
    doc = numerics(int8, ref, images)
    rows = op_outputs(int8)
    assert len(doc["layers"]) == len(rows) and doc["unmatched"] == []  # every op output has its counterpart
    for r in doc["layers"]:
        assert np.isfinite([r["sqnr_db"], r["cosine"], r["max_abs_err"], r["mean_abs_err"], r["scale"],
                            r["rounding_sqnr_db"]]).all(), r
        assert r["rounding_sqnr_db"] >= r["sqnr_db"] - 0.5, r  # rounding alone is the floor of the error
    assert doc["layers"][-1]["name"] == "output0" and 0 <= doc["output"]["top1_agreement"] <= 1
    names = [r["name"] for r in doc["layers"]]
    assert names.index("conv1_relu") < names.index("fire2_concat") < names.index("conv10")


def test_a_planted_fault_is_found_at_its_layer(files, negate_weights):
    int8, ref, images = files
    f = TfliteFile(int8)
    convs = [op for op in f.ops if op.name == "CONV_2D"]
    target = convs[len(convs) // 2]  # a conv in the middle of the graph
    expected = output_key(f.tensors[target.outputs[0]].name)
    baseline = numerics(int8, ref, images)["layers"]
    broken = numerics(negate_weights(int8, target.index), ref, images)["layers"]
    assert first_drop(baseline, broken, db=10.0) == expected
    assert first_drop(baseline, baseline) is None


def test_the_command_writes_json_and_a_plot(files, tmp_path, capsys):
    from mobilekit import cli

    int8, ref, _ = files
    (tmp_path / "m.tflite").write_bytes(int8)
    (tmp_path / "m_float.tflite").write_bytes(ref)
    code = cli.main(["numerics", str(tmp_path / "m.tflite"), "--reference", str(tmp_path / "m_float.tflite"),
                     "--data", "photos", "--images", "4", "--json", str(tmp_path / "n.json"),
                     "--plot", str(tmp_path / "n.png")])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "n.json").read_text())
    assert doc["images"] == 4 and doc["data"].startswith("scikit-image photos")
    assert {"name", "op", "sqnr_db", "cosine", "max_abs_err", "mean_abs_err", "scale"} <= set(doc["layers"][0])
    assert {"top1_agreement", "kl"} <= set(doc["output"])
    assert (tmp_path / "n.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "conv1_relu" in capsys.readouterr().out
