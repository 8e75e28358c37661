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
    with pytest.raises(SchemaError, match="median_ms"):
        RunStats.from_dict({k: v for k, v in RUN.items() if k != "median_ms"})
    with pytest.raises(SchemaError, match="schema_version 99"):
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
