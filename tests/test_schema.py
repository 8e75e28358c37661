"""Typed results (mobilekit.schema): round trips, unknown fields and versions refused, key order kept."""

import pytest

from mobilekit.schema import SCHEMA_VERSION, BenchEntry, BenchResult, BuildReport, RunStats, SchemaError

RUN = {"init_ms": 1.0, "first_inference_ms": 2.0, "warmup_mean_ms": 1.5, "min_ms": 0.9, "median_ms": 1.0,
       "mean_ms": 1.1, "p90_ms": 1.2, "p99_ms": 1.3, "std_ms": 0.1, "runs": 50, "runs_per_s": 900.0,
       "rss_increase_kb": 10, "xnnpack_partitions": 1, "ops_outside_xnnpack": ["SOFTMAX"], "num_threads": 1,
       "use_xnnpack": True, "warmup_runs": 1, "num_runs": 50, "min_secs": 1.0}


def test_bench_records_round_trip_and_keep_key_order():
    entry = {"path": "m.tflite", "runtime": "litert", "size_bytes": 100, "gzip_bytes": 80, "inputs": [],
             "outputs": [], "ops": {"CONV_2D": 1}, "analysis": None, "runs": {"1": RUN}, "targets": {}}
    doc = {"schema_version": SCHEMA_VERSION, "settings": {"num_runs": 50}, "host": {}, "versions": {},
           "models": [entry]}
    result = BenchResult.from_dict(doc)
    assert isinstance(result.models[0], BenchEntry) and isinstance(result.models[0].runs["1"], RunStats)
    assert result.to_dict() == doc and list(result.to_dict()["models"][0]) == list(entry)
    assert result.models[0].runs["1"].median_ms == 1.0


def test_unknown_fields_missing_fields_and_other_versions_are_refused():
    with pytest.raises(SchemaError, match="unknown field 'colour'"):
        RunStats.from_dict({**RUN, "colour": 1})
    with pytest.raises(SchemaError, match="^RunStats: missing field 'median_ms'$"):
        RunStats.from_dict({k: v for k, v in RUN.items() if k != "median_ms"})
    with pytest.raises(SchemaError, match="schema_version is 99; this mobilekit reads"):
        BenchResult.from_dict({"schema_version": 99, "settings": {}, "host": {}, "versions": {}, "models": []})
    with pytest.raises(SchemaError, match="expected a JSON object"):
        BenchEntry.from_dict([1])


def test_build_report_writes_optional_sections_only_when_present():
    required = {k: {} for k in ("metaparameters", "preprocessing", "quantization", "sizes", "ops", "sparsity",
                                "accuracy", "latency", "config", "versions", "stage_seconds")}
    report = BuildReport(arch="squeezenet1_1", input_shape=[48, 48, 3], classes=["a", "b"], num_classes=2, params=1,
                         macs=2, sha256="0" * 64, seed=0, **required)
    d = report.to_dict()
    assert list(d)[:2] == ["schema_version", "arch"] and d["schema_version"] == SCHEMA_VERSION
    assert not {"weights", "source", "recipe", "survival", "calibration", "arm", "files"} & set(d)
    assert BuildReport.from_dict(d) == report
    with_arm = report.replace(arm={"kind": "int8"}, files={"tflite": "x.tflite"}).to_dict()
    assert list(with_arm).index("arm") == list(with_arm).index("latency") + 1 and list(with_arm)[-1] == "files"


# The readers of report.json, results.json and point.json go through these records (mobilekit.json_files.read_record).
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _row(**changes) -> dict:
    row = {"point": "a1b2c3d4e5f6", "knobs": {"arch": "squeezenet1_1", "squeeze_ratio": 0.25}, "seed": 0,
           "status": "ok", "config": {"arch": "squeezenet1_1"}, "error": None, "accuracy_int8": 0.81,
           "size_gzip_bytes": 301_000, "targets_met": {"sram_kb": True}, "meets_targets": True, "node": "n1"}
    return {**row, **changes}


def test_point_rows_read_back_and_damaged_ones_fail_in_one_place(tmp_path):
    import json

    from mobilekit.errors import MobilekitError
    from mobilekit.explore.results import collect
    from mobilekit.json_files import read_record
    from mobilekit.schema import PointRow

    row = _row()
    assert PointRow.from_dict(row).to_dict() == {k: v for k, v in row.items() if v is not None}
    path = tmp_path / "point.json"
    for bad, needle in ((_row(status="done"), "status must be one of ok, failed, screened_out; found 'done'"),
                        (_row(seed="0"), "seed must be int; found '0'"), (_row(colour="red"), "unknown field 'colour'"),
                        ({k: v for k, v in _row().items() if k != "config"}, "config")):
        path.write_text(json.dumps(bad))
        with pytest.raises(MobilekitError) as e:
            read_record(path, PointRow, "sweep point")
        assert needle in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)
    sweep = tmp_path / "sweep"
    for name, doc in (("good", _row()), ("bad", _row(status="done"))):
        (sweep / "points" / name).mkdir(parents=True)
        (sweep / "points" / name / "point.json").write_text(json.dumps(doc))
    assert [r["point"] for r in collect(sweep)] == ["a1b2c3d4e5f6"]  # the damaged row is not a result


def test_committed_sweeps_and_a_foreign_build_report_read_through_their_records(tmp_path):
    import json

    from mobilekit.errors import MobilekitError
    from mobilekit.export_android import read_build
    from mobilekit.json_files import read_record
    from mobilekit.schema import SweepResults

    sweeps = sorted((ROOT / "benchmarks" / "results").rglob("results.json"))
    assert len(sweeps) >= 3
    for p in sweeps:  # results.json written by earlier mobilekit versions still read
        doc = json.loads(p.read_text())
        assert read_record(p, SweepResults, "sweep results").to_dict() == doc
    (tmp_path / "report.json").write_text(json.dumps({"sha256": "0" * 64, "classes": ["a"], "files": {},
                                                      "preprocessing": {"size": [8, 8], "scale": 1, "offset": 0},
                                                      "quantization": {"input": {"scale": 1, "zero_point": 0},
                                                                       "output": {"scale": 1, "zero_point": 0}}}))
    with pytest.raises(MobilekitError, match=r"^build report '.*report.json' is not a BuildReport: BuildReport: missing "
                                             r"fields 'arch', 'metaparameters', 'input_shape', 'num_classes', "):
        read_build(tmp_path)
    foreign = {k: v for k, v in json.loads(sweeps[0].read_text()).items() if k != "schema_version"}
    with pytest.raises(SchemaError, match=r"^SweepResults: schema_version is None; this mobilekit reads \d+$"):
        SweepResults.from_dict(foreign)  # results.json is only ever mobilekit's: no version, not one
