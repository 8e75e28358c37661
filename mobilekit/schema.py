"""Typed results: the build report, bench entries and run statistics as frozen dataclasses.

A leaf module (it imports nothing of mobilekit). Every record has ``to_dict()`` (the JSON written,
keys in field order, optional fields left out when None) and ``from_dict()`` (unknown keys are an
error, so a reader notices a format it does not know); the top-level documents carry
``schema_version``. Nested sections the report has always had (sizes, sparsity, accuracy, ...) stay
plain JSON objects inside the record. Rendering lives in mobilekit.report.

Example: ``BuildReport.from_dict(json.load(open("build/squeezenet1_1/report.json"))).accuracy["tflite_int8"]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SCHEMA_VERSION = 1


class SchemaError(ValueError):
    """A JSON document that is not the record it claims to be."""


def _to_dict(record, optional: tuple[str, ...]) -> dict:
    out = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is None and f.name in optional:
            continue
        out[f.name] = value
    return out


def _from_dict(cls, d: dict, nested: dict | None = None):
    if not isinstance(d, dict):
        raise SchemaError(f"{cls.__name__}: expected a JSON object, received {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise SchemaError(f"{cls.__name__}: unknown field {unknown[0]!r}")
    version = d.get("schema_version", SCHEMA_VERSION)
    if "schema_version" in names and version != SCHEMA_VERSION:
        raise SchemaError(f"{cls.__name__}: schema_version {version!r}; this mobilekit reads {SCHEMA_VERSION}")
    values = dict(d)
    for key, convert in (nested or {}).items():
        if values.get(key) is not None:
            values[key] = convert(values[key])
    try:
        return cls(**values)
    except TypeError as e:  # a required field missing
        raise SchemaError(f"{cls.__name__}: {e}") from None


@dataclass(frozen=True)
class RunStats:
    """One model at one thread count: the harness's timing, or what a benchmark_model log prints
    (fields the tool does not print are None, never guessed)."""

    init_ms: float | None
    first_inference_ms: float | None
    warmup_mean_ms: float | None
    min_ms: float | None
    median_ms: float | None
    mean_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    std_ms: float | None
    runs: int
    runs_per_s: float | None
    rss_increase_kb: int | None
    xnnpack_partitions: int | None
    ops_outside_xnnpack: list
    num_threads: int
    use_xnnpack: bool | None
    warmup_runs: int | None = None
    num_runs: int | None = None
    min_secs: float | None = None

    _OPTIONAL = ("warmup_runs", "num_runs", "min_secs")

    def to_dict(self) -> dict:
        return _to_dict(self, self._OPTIONAL)

    @classmethod
    def from_dict(cls, d: dict) -> "RunStats":
        return _from_dict(cls, d)


@dataclass(frozen=True)
class BenchEntry:
    """One model of `mobilekit bench` (LiteRT, onnxruntime, or a phone's benchmark_model log)."""

    path: str
    runtime: str  # "litert" | "onnxruntime" | "benchmark_model"
    source_log: str | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    inputs: list | None = None
    outputs: list | None = None
    ops: dict | None = None
    precision: dict | None = None  # full int8, or its int8 / int16 / float op counts (mobilekit.precision)
    analysis: dict | None = None
    runs: dict | None = None  # thread count (str) -> RunStats
    targets: dict | None = None
    profile: dict | None = None
    arm: dict | None = None

    _OPTIONAL = ("source_log", "profile", "arm", "runs", "targets", "inputs", "outputs", "ops", "precision")

    def to_dict(self) -> dict:
        d = _to_dict(self, self._OPTIONAL)
        if self.runs is not None:
            d["runs"] = {k: v.to_dict() if isinstance(v, RunStats) else v for k, v in self.runs.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BenchEntry":
        return _from_dict(cls, d, {"runs": lambda runs: {k: RunStats.from_dict(v) for k, v in runs.items()}})


@dataclass(frozen=True)
class BenchResult:
    """A `mobilekit bench --json` document."""

    settings: dict
    host: dict
    versions: dict
    models: list  # BenchEntry
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {"schema_version": self.schema_version, "settings": self.settings, "host": self.host,
                "versions": self.versions,
                "models": [m.to_dict() if isinstance(m, BenchEntry) else m for m in self.models]}

    @classmethod
    def from_dict(cls, d: dict) -> "BenchResult":
        return _from_dict(cls, d, {"models": lambda ms: [BenchEntry.from_dict(m) for m in ms]})


@dataclass(frozen=True)
class BuildReport:
    """A build's report.json: what was built, from what, and the measured evidence."""

    arch: str
    metaparameters: dict
    input_shape: list
    classes: list
    num_classes: int
    params: int
    macs: int
    preprocessing: dict
    quantization: dict
    sizes: dict
    ops: dict
    sha256: str
    sparsity: dict
    accuracy: dict
    latency: dict
    seed: int
    config: dict
    versions: dict
    stage_seconds: dict
    weights: str | None = None  # pretrained builds: "imagenet"
    source: str | None = None
    recipe: dict | None = None
    survival: dict | None = None
    calibration: dict | None = None
    arm: dict | None = None
    files: dict | None = None
    warnings: list | None = None  # what the user should act on (near-chance accuracy, tiny data, ...)
    host: dict | None = None  # the CPU the latency was measured on (mobilekit.hostinfo.cpu_info)
    numerics: dict | None = None  # int8 vs its float reference per layer (mobilekit.numerics): the worst layers
    rewrites: list | None = None  # export graph rewrites made or refused, with reasons (mobilekit.rewrites)
    throughput: dict | None = None  # per training stage: steps, images, seconds, steady images/s, evaluation
    precision: dict | None = None  # what each op computes in, and how auto chose (mobilekit.precision)
    transfer: dict | None = None  # pretrained builds: the weights' source and sha256, each phase's layers and accuracy
    schema_version: int = SCHEMA_VERSION

    # report.json's key order (the order the fields were always written in).
    ORDER = ("schema_version", "arch", "weights", "source", "transfer", "metaparameters", "input_shape", "classes", "num_classes",
             "params", "macs", "preprocessing", "quantization", "sizes", "ops", "sha256", "recipe", "rewrites", "precision", "sparsity",
             "survival", "accuracy", "numerics", "warnings", "calibration", "latency", "host", "arm", "seed", "config", "versions",
             "stage_seconds", "throughput", "files")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.ORDER if getattr(self, k) is not None}

    def replace(self, **changes) -> "BuildReport":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> "BuildReport":
        return _from_dict(cls, d)
