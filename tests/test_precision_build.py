"""A tiny Fashion-MNIST build with mixed precision, end to end: report.json, report.md and the app's model.json
say what the file computes in; int16x8 runs in LiteRT within the budget."""

import json

import pytest

from mobilekit import cli

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]

TINY = ["--arch", "squeezenet1_1", "--recipe", "int8-ptq", "--limit-train", "2000", "--limit-test", "500",
        "--input-size", "32", "--epochs", "0.5", "--latency-runs", "5"]


def _build(tmp_path, name, *flags) -> dict:
    out = tmp_path / name
    assert cli.main(["build", *TINY, *flags, "--out", str(out)]) == 0
    return json.loads((out / "report.json").read_text())


@pytest.mark.extended
def test_int16x8_and_a_float_layer_are_stated_everywhere(tmp_path):
    plain = _build(tmp_path, "int8")
    assert plain["precision"]["full_int8"] and plain["precision"]["mode"] == "int8"
    wide = _build(tmp_path, "int16x8", "--precision", "int16x8")
    # int16 in and out inside; the app gets float32 around it (MediaPipe takes no int16), the same answers
    assert wide["quantization"]["input"]["dtype"] == "float32" and wide["precision"]["ops"]["int8"] == 0
    io = wide["app"]["io"]
    assert (io["input"], io["checked_against"], io["identical"], io["images"]) == ("float32", "int16", 500, 500)
    acc = wide["accuracy"]
    assert acc["tflite_int8"] >= acc["keras_float"] - 0.02, acc  # within a 2-point budget of float
    assert "mixed-precision TFLite, not full int8" in (tmp_path / "int16x8" / "report.md").read_text()
    mixed = _build(tmp_path, "float-layer", "--keep-float", "fire9_expand3x3_relu")
    p = mixed["precision"]
    assert p["layers"]["fire9_expand3x3_relu"] == "float" and not p["full_int8"]
    assert [k for k, v in p["layers"].items() if v != "int8"] == ["fire9_expand3x3_relu"]
    assert mixed["sizes"]["int8_tflite_bytes"] > plain["sizes"]["int8_tflite_bytes"]  # float weights are bigger
    assert cli.main(["export", "android", str(tmp_path / "float-layer"), "--to", str(tmp_path / "app")]) == 0
    app = json.loads((tmp_path / "app" / "model.json").read_text())
    assert app["precision"]["full_int8"] is False and app["precision"]["layers_not_int8"] == {
        "fire9_expand3x3_relu": "float"}
    assert app["input"]["dtype"] == "uint8"  # a float layer inside keeps the int8 body's interface: uint8
    assert cli.main(["export", "android", str(tmp_path / "int16x8"), "--to", str(tmp_path / "app16")]) == 0
    app16 = json.loads((tmp_path / "app16" / "model.json").read_text())
    assert app16["input"]["dtype"] == "float32" and app16["preprocessing"]["quantize"].startswith("none")
    assert app16["input"]["scale"] is None and app16["output"]["zero_point"] is None
    from mobilekit.layer_map import LayerMap
    from mobilekit.model_explorer import build_overlays

    content = (tmp_path / "float-layer" / "squeezenet1_1.tflite").read_bytes()
    docs = {d["name"]: d["results"] for d in build_overlays(mixed, content)}
    assert list(docs) == ["int8 SQNR vs float (dB)", "weight sparsity", "precision (bits)"]
    lifted = LayerMap.of(content).tensor_names["fire9_expand3x3_relu"][0]
    assert docs["precision (bits)"][lifted]["value"] == 32
    assert {r["value"] for r in docs["precision (bits)"].values()} == {8, 32}
    assert len(docs["int8 SQNR vs float (dB)"]) >= 30 and len(docs["weight sparsity"]) >= 20
