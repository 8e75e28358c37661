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


def _from_dict(cls, d: dict, nested: dict | None = None, versioned: bool = False):
    """``cls`` from a JSON object, refused in one line: the wrong schema_version (or none, when ``versioned``:
    a file only mobilekit writes), an unknown field, a required one missing."""
    if not isinstance(d, dict):
        raise SchemaError(f"{cls.__name__}: expected a JSON object, received {type(d).__name__}")
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    if "schema_version" in names and (versioned or "schema_version" in d) and \
            d.get("schema_version") != SCHEMA_VERSION:
        raise SchemaError(f"{cls.__name__}: schema_version is {d.get('schema_version')!r}; this mobilekit reads "
                          f"{SCHEMA_VERSION}")
    unknown = sorted(set(d) - names)
    if unknown:
        raise SchemaError(f"{cls.__name__}: unknown field {unknown[0]!r}")
    missing = [f.name for f in fields if f.name not in d and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise SchemaError(f"{cls.__name__}: missing field{'s' if len(missing) > 1 else ''} "
                          + ", ".join(repr(m) for m in missing))
    values = dict(d)
    for key, convert in (nested or {}).items():
        if values.get(key) is not None:
            values[key] = convert(values[key])
    return cls(**values)


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
    app: dict | None = None  # its TFLite metadata and the app runtimes it fits (mobilekit.app_metadata)

    _OPTIONAL = ("source_log", "profile", "arm", "runs", "targets", "inputs", "outputs", "ops", "precision", "app")

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
    budget: dict | None = None  # the accuracy budget: each candidate tried on the validation split, the one chosen
    transfer: dict | None = None  # pretrained builds: the weights' source and sha256, each phase's layers and accuracy
    app: dict | None = None  # the .tflite's TFLite metadata and the app runtimes it fits (mobilekit.app_metadata)
    distributed: dict | None = None  # --workers: the Ray Train workers, their nodes, batches, restarts, step times
    schema_version: int = SCHEMA_VERSION

    # report.json's key order (the order the fields were always written in).
    ORDER = ("schema_version", "arch", "weights", "source", "transfer", "metaparameters", "input_shape", "classes", "num_classes",
             "params", "macs", "preprocessing", "quantization", "sizes", "ops", "sha256", "app", "recipe", "budget", "rewrites", "precision",
             "sparsity", "survival", "accuracy", "numerics", "warnings", "calibration", "latency", "host", "arm", "seed", "config", "versions",
             "stage_seconds", "throughput", "distributed", "files")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.ORDER if getattr(self, k) is not None}

    def replace(self, **changes) -> "BuildReport":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> "BuildReport":
        return _from_dict(cls, d)


def _check_kinds(record, kinds: dict) -> None:
    """Each named field of ``record`` is of its kind (a bool is never a number here), or SchemaError naming it."""
    for name, kind in kinds.items():
        value = getattr(record, name)
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise SchemaError(f"{type(record).__name__}: {name} must be {getattr(kind, '__name__', kind)}; "
                              f"found {value!r}"[:200])


POINT_STATUSES = ("ok", "failed", "screened_out")


@dataclass(frozen=True)
class PointRow:
    """One design point of a sweep as ``points/<id>/point.json`` holds it: its knobs, the build config, how it
    ended, and (when built) the measured metrics; the columns of results.csv come from these."""

    point: str
    knobs: dict
    seed: int
    status: str  # ok, failed or screened_out
    config: dict
    error: str | None = None
    accuracy_int8: float | None = None
    accuracy_float: float | None = None
    test_images: int | None = None
    size_tflite_bytes: int | None = None
    size_gzip_bytes: int | None = None
    screened_size_gzip_bytes: int | None = None
    latency_host_ms: float | None = None
    latency_device_ms: float | None = None
    device_instructions: int | None = None
    energy_mj: float | None = None
    footprint_bytes: int | None = None
    fits_sram: bool | None = None
    params: int | None = None
    macs: int | None = None
    peak_activation_bytes: int | None = None
    train_seconds: float | None = None
    wall_seconds: float | None = None
    stage_seconds: dict | None = None
    point_seconds: float | None = None
    targets_met: dict | None = None
    meets_targets: bool | None = None
    accuracy_drop: float | None = None  # points, int8 against float on the build's validation split (with a budget)
    within_budget: bool | None = None  # the build's accuracy budget held (None: built without one)
    tflite: str | None = None
    sha256: str | None = None
    node: str | None = None  # the Ray node that built it
    attempts: int | None = None  # runs of a trial whose worker or node died

    def __post_init__(self):
        _check_kinds(self, {"point": str, "knobs": dict, "seed": int, "status": str, "config": dict})
        if self.status not in POINT_STATUSES:
            raise SchemaError(f"PointRow: status must be one of {', '.join(POINT_STATUSES)}; found {self.status!r}")

    def to_dict(self) -> dict:
        return _to_dict(self, tuple(f.name for f in dataclasses.fields(self))[5:])

    @classmethod
    def from_dict(cls, d: dict) -> "PointRow":
        return _from_dict(cls, d)


@dataclass(frozen=True)
class SweepResults:
    """A sweep's results.json: the sweep as run, the counts, the recommended point, saturation and the rows of
    results.csv (knob columns differ per sweep, so rows stay JSON objects, each with a point and a status)."""

    sweep: dict
    counts: dict
    screened_out: dict
    saturation: dict
    rows: list
    recommended: str | None = None
    schema_version: int = SCHEMA_VERSION

    SWEEP_KINDS = {"space": dict, "archs": list, "objectives": list, "targets": dict, "search": str, "seeds": int}

    def __post_init__(self):
        _check_kinds(self, {"sweep": dict, "counts": dict, "screened_out": dict, "saturation": dict, "rows": list})
        for key, kind in self.SWEEP_KINDS.items():
            value = self.sweep.get(key)
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                raise SchemaError(f"SweepResults: sweep.{key} is missing or not a {kind.__name__}")
        for i, row in enumerate(self.rows):
            if not isinstance(row, dict) or not isinstance(row.get("point"), str) or \
                    row.get("status") not in POINT_STATUSES:
                raise SchemaError(f"SweepResults: rows[{i}] is not a point row (point, status)")

    def to_dict(self) -> dict:
        return {"schema_version": self.schema_version, "sweep": self.sweep, "counts": self.counts,
                "screened_out": self.screened_out, "recommended": self.recommended, "saturation": self.saturation,
                "rows": self.rows}

    @classmethod
    def from_dict(cls, d: dict) -> "SweepResults":
        return _from_dict(cls, d, versioned=True)
