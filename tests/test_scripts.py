"""The stand-alone scripts: benchmarks/zoo.py and converters/export_mobilenet_v2_weights.py."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # no training, but tens of seconds: the full lane (CI) runs it
def test_zoo_benchmark_writes_its_table_before_and_after_the_rewrites(tmp_path):
    out = tmp_path / "zoo.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "zoo.py"), "--archs", "squeezenet1_0",
                             "--size", "64", "--runs", "3", "--rounds", "2", "--no-arm", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    row, = json.loads(out.read_text())["rows"]
    assert row["arch"] == "squeezenet1_0" and row["input"] == 64
    paper, default = row["variants"]["paper"], row["variants"]["default"]
    assert set(row["variants"]) == {"paper", "default", "+space-to-depth-stem"}  # pad-grow adds nothing here
    assert paper["rewrites"] == [] and default["rewrites"] == ["pad-fold:pool4_pad"]
    assert paper["int8_ops"]["PAD"] == 1 and "PAD" not in default["int8_ops"]
    assert row["variants"]["+space-to-depth-stem"]["int8_ops"]["SPACE_TO_DEPTH"] == 1
    for v in row["variants"].values():
        assert v["int8_bytes"] < v["float_bytes"] / 3  # int8 weights: about a quarter
        assert v["float_ms"] > 0 and v["int8_ms"] > 0
        assert v["int8_xnnpack_partitions"] == 1 and set(v["int8_ops_outside_xnnpack"]) <= {"SOFTMAX"}
    md = out.with_suffix(".md").read_text()
    assert "| squeezenet1_0 | 1,248,424 |" in md and "| squeezenet1_0 | space-to-depth-stem |" in md


def test_zoo_benchmark_rejects_an_unknown_arch(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "zoo.py"), "--archs", "resnet50",
                             "--out", str(tmp_path / "z.json")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown arch 'resnet50'" in result.stderr
    assert not (tmp_path / "z.json").exists()


@pytest.mark.slow  # no training, but tens of seconds: the full lane (CI) runs it
def test_porter_script_writes_loadable_keras_weights(tmp_path):
    out = tmp_path / "mnv2.h5"
    result = subprocess.run([sys.executable, str(ROOT / "converters" / "export_mobilenet_v2_weights.py"), str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    from mobilekit.weights import imagenet_mobilenet_v2

    ported = imagenet_mobilenet_v2()
    reloaded = imagenet_mobilenet_v2()
    for layer in reloaded.layers:  # scramble, then load the file
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    reloaded.load_weights(str(out))
    for a, b in zip(ported.get_weights(), reloaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # runs the benchmark end to end (a model converted and timed): the full lane (CI) runs it
def test_harness_overhead_benchmark_runs(tmp_path):
    out = tmp_path / "overhead.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "harness_overhead.py"), "--sizes", "32",
                             "--runs", "5", "--rounds", "2", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: outside 2% (not judged at 5 runs)
    row, = json.loads(out.read_text())["rows"]
    assert row["harness_median_ms"] > 0 and row["bare_median_ms"] > 0
    assert len(row["round_medians_ms"]["harness"]) == len(row["round_medians_ms"]["bare"]) == 2


@pytest.mark.slow  # no training, but tens of seconds: the full lane (CI) runs it
def test_keras_to_int8_converter_writes_a_verified_file_and_refuses_code(tmp_path):
    import mobilekit
    from mobilekit.backend import keras
    from mobilekit.tflite_file import TfliteFile

    mobilekit.create("squeezenet1_1", input_shape=(32, 32, 3), classes=10).save(tmp_path / "m.keras")
    script = str(ROOT / "converters" / "keras_to_int8.py")
    out = tmp_path / "m.tflite"
    result = subprocess.run([sys.executable, script, str(tmp_path / "m.keras"), str(out), "--samples", "16"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    f = TfliteFile.read(out)
    assert f.float_problems() == [] and [t.dtype for t in f.inputs] == ["UINT8"] and f.inputs[0].shape == (1, 32, 32, 3)
    assert f.op_counts()["CONV_2D"] == 26 and f"{out}: {out.stat().st_size:,} bytes, full int8" in result.stdout
    assert (f.inputs[0].scale[0], f.inputs[0].zero_point[0]) == (np.float32(1 / 255), 0)  # pixels straight in
    from mobilekit.app_metadata import read

    md = read(f)
    assert md["name"] == "m" and md["normalization"] == {"mean": [0.0], "std": [255.0]} and md["labels"] is None
    marker = tmp_path / "ran"
    inp = keras.Input((8, 8, 3))
    code = keras.layers.Lambda(lambda x, m=str(marker): (open(m, "w").close(), x)[1])(inp)
    keras.Model(inp, code).save(tmp_path / "evil.h5")
    marker.unlink(missing_ok=True)  # saving traced the Lambda once; loading must not run it again
    result = subprocess.run([sys.executable, script, str(tmp_path / "evil.h5"), str(tmp_path / "e.tflite")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Lambda layer" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists() and not (tmp_path / "e.tflite").exists()
