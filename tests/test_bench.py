"""`mobilekit bench`: benchmark_model-style statistics, interleaving, and bad input as exit 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mobilekit
from mobilekit import cli
from mobilekit.bench.command import STAT_FIELDS
from mobilekit.convert import convert_float, convert_int8

pytestmark = pytest.mark.xdist_group("bench")  # one worker builds the module fixture `models` for all

MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
QUICK = ["--num_runs", "5", "--warmup_runs", "2", "--min_secs", "0"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    model = mobilekit.create("squeezenet1_1", input_shape=(32, 32, 3), classes=10)
    x = np.random.default_rng(0).random((4, 32, 32, 3), np.float32)
    from mobilekit.app_metadata import image_classifier

    for name, content in (("int8", convert_int8(model, x)), ("float", convert_float(model))):  # as the kit writes
        (d / f"{name}.tflite").write_bytes(image_classifier(  # them: with TFLite metadata (fuzzed with the rest)
            content, name="squeezenet1_1", version="test", description=name, preprocessing={"scale": 1 / 255,
                                                                                            "offset": 0.0},
            labels=[f"class {i}" for i in range(10)]))
    return d


def bench(*args):
    return subprocess.run([MOBILEKIT, "bench", *map(str, args)], capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr[-1000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mobilekit bench: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_two_models_two_thread_counts_json_and_csv(models, tmp_path):
    j, c = tmp_path / "out" / "bench.json", tmp_path / "bench.csv"
    result = bench(models / "int8.tflite", models / "float.tflite", *QUICK, "--num_threads", "1,2",
                   "--json", j, "--csv", c)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "median ms" in result.stdout and "XNNPACK partitions" in result.stdout
    data = json.loads(j.read_text())
    assert data["settings"]["num_threads"] == [1, 2] and data["settings"]["interleaved"]
    int8, flt = data["models"]
    assert int8["inputs"][0]["dtype"] == "int8" and flt["inputs"][0]["dtype"] == "float32"
    assert int8["inputs"][0]["shape"] == [1, 32, 32, 3] and int8["inputs"][0]["scale"][0] > 0
    assert int8["size_bytes"] < flt["size_bytes"] and int8["gzip_bytes"] < int8["size_bytes"]
    assert int8["ops"]["CONV_2D"] == 26 and int8["analysis"]["macs"] == flt["analysis"]["macs"] > 0
    assert sum(op["macs"] for op in int8["analysis"]["ops"]) == int8["analysis"]["macs"]
    spans = int8["analysis"]["activation_lifetimes"]
    assert spans[0]["first"] == -1 and max(s["last"] for s in spans) == len(int8["analysis"]["ops"])
    for m in (int8, flt):
        for threads in ("1", "2"):
            r = m["runs"][threads]
            assert set(STAT_FIELDS) <= set(r)
            assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["p99_ms"]
            assert r["runs"] >= 5 and r["xnnpack_partitions"] == 1 and r["num_threads"] == int(threads)
    # interleaved: every round runs each model once
    assert int8["runs"]["1"]["runs"] == flt["runs"]["1"]["runs"]
    assert int8["runs"]["1"]["ops_outside_xnnpack"] == ["SOFTMAX"] and flt["runs"]["1"]["ops_outside_xnnpack"] == []
    rows = c.read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("model,runtime,num_threads,size_bytes")


def test_without_xnnpack_and_with_an_input_file(models, tmp_path):
    x = np.random.default_rng(1).integers(-128, 128, (1, 32, 32, 3), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    j = tmp_path / "b.json"
    result = bench(models / "int8.tflite", *QUICK, "--use_xnnpack", "false", "--input", tmp_path / "x.npy",
                   "--json", j)
    assert result.returncode == 0, result.stderr[-2000:]
    r = json.loads(j.read_text())["models"][0]["runs"]["1"]
    assert r["xnnpack_partitions"] == 0 and r["use_xnnpack"] is False


def test_bad_inputs_are_one_line_errors(models, tmp_path):
    content = (models / "int8.tflite").read_bytes()
    (tmp_path / "text.tflite").write_text("not a model")
    (tmp_path / "half.tflite").write_bytes(content[: len(content) // 2])
    assert_one_line_error(bench(tmp_path / "missing.tflite"), "no such model file")
    assert_one_line_error(bench(tmp_path / "text.tflite"), "not a TFLite flatbuffer")
    assert_one_line_error(bench(tmp_path / "half.tflite"), "half.tflite", "corrupt")
    assert_one_line_error(bench(models / "int8.tflite", "--num_runs", "0"), "--num_runs must be >= 1")
    assert_one_line_error(bench(models / "int8.tflite", "--num_threads", "0,2"), "--num_threads")
    np.save(tmp_path / "shape.npy", np.zeros((1, 16, 16, 3), np.int8))
    np.save(tmp_path / "dtype.npy", np.zeros((1, 32, 32, 3), np.float32))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    assert_one_line_error(bench(models / "int8.tflite", "--input", tmp_path / "shape.npy"), "int8[1, 16, 16, 3]",
                          "takes int8[1, 32, 32, 3]")
    assert_one_line_error(bench(models / "int8.tflite", "--input", tmp_path / "dtype.npy"), "float32")
    assert_one_line_error(bench(models / "int8.tflite", "--input", tmp_path / "obj.npy"), "not a readable .npy")
    assert_one_line_error(bench(models / "int8.tflite", "--input", tmp_path / "text.tflite"), "not a readable .npy")


def _fuzz():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import fuzz
    finally:
        sys.path.pop(0)
    return fuzz


@pytest.mark.slow
def test_mutated_files_never_crash_the_command(models, tmp_path):
    """200 randomly mutated copies (benchmarks/fuzz.py's mutations): each is benchmarked or refused in one line."""
    fuzz = _fuzz()
    content = (models / "int8.tflite").read_bytes()
    rng = np.random.default_rng(0)
    codes = []
    for i in range(200):
        path = tmp_path / f"m{i}.tflite"
        path.write_bytes(fuzz.mutate_tflite(content, rng, i))
        rc, err = fuzz.run_cli(["bench", str(path), "--num_runs", "1", "--warmup_runs", "0", "--min_secs", "0"])
        codes.append(rc)
        assert fuzz.finding(rc, err) is None, (i, rc, err)
    assert codes.count(2) >= 40 and codes.count(0) >= 40, (codes.count(0), codes.count(2))


@pytest.mark.parametrize("count", [pytest.param(100, id="100"), pytest.param(300, id="300", marks=pytest.mark.slow)])
def test_crafted_benchmark_model_logs_never_crash_the_command(tmp_path, count):
    """Crafted logs (junk and absurd numbers, dropped and repeated lines, binary noise, truncation): 100 in the
    fast lane, 300 in the full lane (the same seed: the 100 are the first of the 300). Seeds 0-2 refused
    18-31 of 100 and accepted 69-82; seed 0 refused 66 of 300."""
    result = _fuzz().fuzz("logs", count, tmp_path, seed=0)
    assert result["findings"] == [], result["findings"][:5]
    # both outcomes are exercised: a fuzzer that only makes junk (or only valid logs) tests half the command
    assert result["exit_codes"].get("2", 0) >= count // 6 and result["exit_codes"].get("0", 0) >= count // 3, \
        result["exit_codes"]


def test_targets_are_checked_and_recorded(models, tmp_path):
    j = tmp_path / "t.json"
    result = bench(models / "int8.tflite", *QUICK, "--sram-kb", "1", "--fps", "1000000", "--energy-mj", "2000",
                   "--json", j)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SRAM 1 KiB" in result.stdout and "MISSES" in result.stdout
    t = json.loads(j.read_text())["models"][0]["targets"]
    assert not t["sram"]["ok"] and not t["fps"]["ok"] and t["energy"]["ok"]
    assert t["energy"]["memory"] == "DRAM" and t["energy"]["macs"]["int8"] > 0 and t["energy"]["macs"]["float32"] == 0
    assert_one_line_error(bench(models / "int8.tflite", "--sram-kb", "-5"), "--sram-kb")


@pytest.mark.slow
def test_op_prefix_models_and_profile(models, tmp_path):
    from mobilekit.bench.profile import prefix_model
    from mobilekit.litert import make_interpreter
    from mobilekit.tflite_file import TfliteFile

    content = (models / "int8.tflite").read_bytes()
    full = TfliteFile(content)
    # ops 0..3 of SqueezeNet 1.1: conv1, pool1, fire2 squeeze, fire2 expand1x1; the expand's output
    # is the only unconsumed tensor, so it becomes the one output
    cut = TfliteFile(prefix_model(content, 3))
    assert [op.name for op in cut.ops] == [op.name for op in full.ops[:4]]
    assert [t.index for t in cut.outputs] == list(full.ops[3].outputs)
    interpreter = make_interpreter(cut.content)
    interpreter.invoke()
    assert tuple(interpreter.get_output_details()[0]["shape"]) == full.tensors[full.ops[3].outputs[0]].shape

    j = tmp_path / "p.json"
    result = bench(models / "int8.tflite", *QUICK, "--profile", "--json", j)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "time by op type" in result.stdout
    p = json.loads(j.read_text())["models"][0]["profile"]
    assert [row["op"] for row in p["ops"]] == [op.name for op in full.ops]
    assert sum(row["ms"] for row in p["ops"]) == pytest.approx(p["total_ms"])  # differences telescope
    assert {k: v["count"] for k, v in p["by_op_type"].items()} == full.op_counts()
    assert p["by_op_type"]["CONV_2D"]["share"] > 0.5  # 26 convs are most of SqueezeNet's time


@pytest.mark.slow  # converts and runs one model in four engines: the full lane (CI) runs it
def test_peers_side_by_side(tmp_path):
    j = tmp_path / "peers.json"
    result = bench("--compare", "onnxruntime", "--arch", "squeezenet1_1", "--input-size", "64", "--classes", "10",
                   *QUICK, "--json", j)
    assert result.returncode == 0, result.stderr[-2000:]
    models = json.loads(j.read_text())["models"]
    assert [m["runtime"] for m in models] == ["litert", "litert", "onnxruntime", "onnxruntime"]
    assert [Path(m["path"]).name for m in models] == ["squeezenet1_1_float.tflite", "squeezenet1_1_int8.tflite",
                                                      "squeezenet1_1_float.onnx", "squeezenet1_1_int8_qdq.onnx"]
    float_onnx, qdq = models[2], models[3]
    assert float_onnx["ops"]["Conv"] == 26 and "QuantizeLinear" not in float_onnx["ops"]
    assert qdq["ops"]["QuantizeLinear"] > 0 and qdq["size_bytes"] < float_onnx["size_bytes"] / 2
    for m in models:
        assert m["runs"]["1"]["runs"] == models[0]["runs"]["1"]["runs"] and m["runs"]["1"]["median_ms"] > 0
    assert not any(Path(m["path"]).exists() for m in models)  # the temporary exports are removed


def test_peer_errors(tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    assert_one_line_error(bench(tmp_path / "bad.onnx"), "bad.onnx", "not a valid ONNX model")
    assert_one_line_error(bench("--compare", "onnxruntime"), "needs --arch")
    assert_one_line_error(bench(), "give MODEL.tflite files")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    assert cli.main(["bench", "--compare", "onnxruntime", "--arch", "squeezenet1_1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs onnxruntime: pip install 'mobilekit[peers]'" in err[0]
