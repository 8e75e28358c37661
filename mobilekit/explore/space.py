"""The design space of `mobilekit explore`: knobs, values, searches, targets, and the points they make.

A *knob* is an architecture metaparameter the builder takes (``squeeze_ratio``, ``pct3x3``,
``alpha``, ...), a build field (``input_size``, ``epochs``, ...) or a recipe field (``sparsity``,
``clusters``, ``qat``); ``arch`` itself is a knob when the sweep spans families. A *point* is
one full :class:`mobilekit.pipeline.BuildConfig` and one seed, named by a hash of what decides
its result (the config, the seed, the data's fingerprint and mobilekit's version), so adding a
value to a knob trains only the new points.

No TensorFlow here: everything is checked from the builders' signatures and BuildConfig.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from mobilekit import archs
from mobilekit.errors import MobilekitError
from mobilekit.settings import Setting

SEARCHES = ("grid", "oneatatime", "optuna")


def _build_settings():
    from mobilekit.pipeline.config import SETTINGS

    return SETTINGS


# BuildConfig fields a sweep may vary, with their value types (declared with the fields: sweep=True).
BUILD_KNOBS = {name: s.kind for name, s in _build_settings().items() if s.sweep}
# BuildConfig fields newer than the sweeps already on disk: left out of a point's id at their defaults, so those
# points keep their ids (and are reused).
ID_DEFAULTS = {name: (list(s.id_default) if isinstance(s.id_default, tuple) else s.id_default)
               for name, s in _build_settings().items() if not s.in_point_id}
# Result columns an objective may name; the direction is given with it ("accuracy_int8:max").
OBJECTIVE_COLUMNS = ("accuracy_int8", "size_gzip_bytes", "size_tflite_bytes", "latency_host_ms",
                     "latency_device_ms", "energy_mj", "params", "macs", "peak_activation_bytes", "train_seconds")
DEFAULT_OBJECTIVES = (("accuracy_int8", "max"), ("size_gzip_bytes", "min"))
# A sweep of more points than this is refused before any point is made (--max-points raises it).
MAX_POINTS = 1000
# A trial whose worker process or node died runs again on another node up to this many times (--max-failures).
MAX_FAILURES, MAX_FAILURES_LIMIT = 2, 20
TARGET_FIELDS = ("min_accuracy", "max_size_kb", "sram_kb", "fps", "energy_mj")


def _cast(knob: str, kind, value):
    """``value`` (text from the command line, or a JSON/YAML scalar) as the knob's type, checked: a build field by
    its declaration (the same rule and message as the Python API and the build flags), an arch knob by its type."""
    settings = _build_settings()
    rule = settings[knob] if knob in settings else Setting(name=knob, kind=kind, none_word=kind is not bool)
    return rule.from_json(value)


def arch_knob_types(arch: str) -> dict[str, type]:
    """The design knobs of ``arch``'s builder and their types (mobilekit.archs.knob_types)."""
    return archs.knob_types(arch)


def parse_space_arg(text: str) -> tuple[str, list[str]]:
    """``"KNOB=V1,V2"`` -> (knob, values as text)."""
    knob, sep, values = text.partition("=")
    knob = knob.strip().replace("-", "_")
    if not sep or not knob:
        raise MobilekitError(f"--space takes KNOB=V1,V2,...; received {text!r}")
    items = [v.strip() for v in values.split(",")]
    if not values.strip() or any(v == "" for v in items):
        raise MobilekitError(f"--space {knob}: empty value list; received {text!r}")
    return knob, items


def parse_objectives(text: str | list) -> tuple[tuple[str, str], ...]:
    """``"accuracy_int8:max,size_gzip_bytes:min"`` (or a list of such items) -> ((column, mode), ...)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        column, _, mode = str(item).strip().partition(":")
        if column not in OBJECTIVE_COLUMNS:
            raise MobilekitError(f"unknown objective {column!r}; choose from {', '.join(OBJECTIVE_COLUMNS)}")
        if mode not in ("min", "max"):
            raise MobilekitError(f"objective {column} needs :min or :max; received {item!r}")
        out.append((column, mode))
    if not out:
        raise MobilekitError("--objectives is empty")
    if len({c for c, _ in out}) != len(out):
        raise MobilekitError(f"--objectives names a column twice; received {text!r}")
    return tuple(out)


@dataclass(frozen=True)
class Targets:
    """Hard design goals; None is not checked. Sizes in KiB (1,024 bytes), energy in millijoules."""

    min_accuracy: float | None = None  # int8 accuracy, fraction 0-1
    max_size_kb: float | None = None  # gzip'd int8 .tflite
    sram_kb: float | None = None  # int8 weights + peak activations must fit
    fps: float | None = None  # on --device (predicted latency)
    energy_mj: float | None = None  # per frame, 45 nm model (docs/energy-model.md)

    def __post_init__(self):
        for name in TARGET_FIELDS:
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise MobilekitError(f"target {name} must be a positive number; received {name}={v!r}")
        if self.min_accuracy is not None and self.min_accuracy > 1:
            raise MobilekitError(f"--min-accuracy is a fraction in (0, 1]; received {self.min_accuracy!r}")

    def given(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ExploreConfig:
    """One sweep: the base build, the space, the search, the targets and where results go.

    Example::

        ExploreConfig(base={"arch": "squeezenet1_1", "input_size": 32, "epochs": 0.3},
                      space={"squeeze_ratio": [0.25, 0.5]}, out="build/explore")
    """

    base: dict  # BuildConfig fields (and arch knobs by name) of the base point
    space: dict  # knob -> list of values (typed or text); "arch" spans families
    out: str = "build/explore"
    search: str = "grid"
    trials: int | None = None  # optuna: number of sampled designs
    seeds: int = 1
    targets: Targets = field(default_factory=Targets)
    objectives: tuple = DEFAULT_OBJECTIVES
    device: str | None = None
    address: str | None = None  # Ray cluster; None: a local Ray started for the sweep
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None  # None: what the cluster's CPUs allow
    retry_failed: bool = False
    max_points: int = MAX_POINTS  # more points than this are refused before any is made
    schedule_timeout: float = 600.0  # seconds trials may wait with none running before the sweep stops
    max_failures: int = MAX_FAILURES  # a trial whose worker or node died is run again this many times

    def __post_init__(self):
        settings = _build_settings()  # the base's build fields: typed and checked as the build checks them
        object.__setattr__(self, "base", {k: settings[k].from_json(v) if k in settings and v is not None else v
                                          for k, v in dict(self.base).items()})
        if self.search not in SEARCHES:
            raise MobilekitError(f"--search must be one of {', '.join(SEARCHES)}; received {self.search!r}")
        if self.search == "optuna":
            if not isinstance(self.trials, int) or isinstance(self.trials, bool) or self.trials < 1:
                raise MobilekitError(f"--search optuna needs --trials N >= 1; received trials={self.trials!r}")
        elif self.trials is not None:
            raise MobilekitError(f"--trials applies to --search optuna; received --search {self.search}")
        for name, low, high in (("seeds", 1, 1000), ("max_concurrent", 1, 1000), ("max_points", 1, 10**6),
                                ("max_failures", 0, MAX_FAILURES_LIMIT)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high):
                raise MobilekitError(f"{name} must be an int in [{low}, {high}]; received {name}={v!r}")
        for name in ("out", "device", "address"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise MobilekitError(f"{name} must be text; received {name}={v!r}"[:300])
        t = self.schedule_timeout
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 1 <= t <= 86400:
            raise MobilekitError(f"--schedule-timeout must be seconds in [1, 86400]; received {t!r}")
        c = self.cpus_per_trial
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c <= 1024:
            raise MobilekitError(f"--cpus-per-trial must be in (0, 1024]; received {c!r}")
        if not isinstance(self.targets, Targets):
            object.__setattr__(self, "targets", Targets(**self.targets))
        object.__setattr__(self, "objectives", parse_objectives([f"{c}:{m}" for c, m in self.objectives]))
        if self.device is not None:
            from mobilekit.bench.devices import device

            object.__setattr__(self, "device", device(self.device).name)
        needs_device = [name for name in ("fps",) if getattr(self.targets, name) is not None]
        needs_device += [c for c, _ in self.objectives if c == "latency_device_ms"]
        if needs_device and self.device is None:
            raise MobilekitError(f"{needs_device[0]} is judged on a phone's predicted latency: give --device "
                                 "(see `mobilekit emulate devices`)")
        if not str(self.out).strip():
            raise MobilekitError("--out must name a folder; received ''")
        if not self.space and "arch" not in self.base:
            raise MobilekitError("nothing to explore: give --space KNOB=V1,V2 (or --arch a,b)")


@dataclass
class Point:
    """One design point: knob values, the full build config (without ``out``) and its id."""

    id: str
    knobs: dict  # knob -> value, "arch" included; None where the arch does not take the knob
    seed: int
    config: dict  # BuildConfig fields, JSON-ready ({} for an invalid combination)
    error: str | None = None  # why the combination is not a valid build

    def build_config(self, out: str):
        from mobilekit.pipeline import BuildConfig

        c = dict(self.config)
        c["devices"] = tuple(c.get("devices") or ())
        return BuildConfig(**{**c, "out": out})


def data_fingerprint(data: str | None, limit_train=None, limit_test=None) -> str:
    """A short hash of the data a point trains and tests on (files' names, sizes and contents or mtimes)."""
    h = hashlib.sha256()
    if data in (None, "fashion-mnist"):
        from mobilekit.data import find_fashion_mnist

        root = find_fashion_mnist()
        if root is None:
            raise MobilekitError("Fashion-MNIST not found; install it with `apt-get install dataset-fashion-mnist` "
                                 "or pass --data DIR")
        for p in sorted(root.glob("*-ubyte.gz")):
            h.update(p.name.encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    else:
        root = Path(data)
        for dirpath, dirnames, filenames in sorted(os.walk(root)):
            dirnames.sort()
            for name in sorted(filenames):
                st = (Path(dirpath) / name).stat()
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(json.dumps([limit_train, limit_test]).encode())
    return h.hexdigest()[:16]


def point_id(config: dict, fingerprint: str) -> str:
    """The hash naming a point: its build config (``out`` aside), the data and mobilekit's version."""
    key = {k: v for k, v in config.items() if k not in ("out", "devices")
           and not (k in ID_DEFAULTS and (list(v) if isinstance(v, tuple) else v) == ID_DEFAULTS[k])}
    blob = json.dumps({"config": key, "data": fingerprint, "mobilekit": version("mobilekit")},
                      sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _typed_space(cfg: ExploreConfig, arch_names: list[str]) -> dict[str, list]:
    """Each knob's values cast to its type; unknown knobs and empty lists are errors."""
    arch_types = {a: arch_knob_types(a) for a in arch_names}
    typed = {}
    for knob, values in cfg.space.items():
        if knob == "arch":
            continue
        if not isinstance(values, (list, tuple)) or not values:
            raise MobilekitError(f"knob {knob}: empty value list")
        kinds = {t[knob] for t in arch_types.values() if knob in t}
        kind = BUILD_KNOBS.get(knob) or (kinds.pop() if len(kinds) == 1 else float if kinds else None)
        if kind is None:
            every = sorted(set(BUILD_KNOBS) | {k for t in arch_types.values() for k in t})
            raise MobilekitError(f"unknown knob {knob!r} for {', '.join(arch_names)}; knobs: {', '.join(every)}")
        cast = [_cast(knob, kind, v) for v in values]
        if len(set(map(repr, cast))) != len(cast):
            raise MobilekitError(f"knob {knob} repeats a value; received {values!r}")
        typed[knob] = cast
    return typed


def arch_list(cfg: ExploreConfig) -> list[str]:
    names = cfg.space.get("arch") or [cfg.base.get("arch", "squeezenet")]
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    resolved = [archs.resolve(str(n).strip()) for n in names]
    if len(set(resolved)) != len(resolved):
        raise MobilekitError(f"--arch names an architecture twice; received {','.join(map(str, names))}")
    return resolved


def _combinations(cfg: ExploreConfig, space: dict[str, list], base_values: dict) -> list[dict]:
    """Knob assignments: the full factorial (grid) or each knob swept around the base (oneatatime)."""
    knobs = list(space)
    if cfg.search == "oneatatime":
        combos = []
        for knob in knobs:
            for v in space[knob]:
                combos.append({**{k: base_values[k] for k in knobs}, knob: v})
        return combos
    return [dict(zip(knobs, values)) for values in itertools.product(*(space[k] for k in knobs))]


def base_value(arch: str, knob: str, base: dict):
    """The base point's value of ``knob`` for ``arch``: the base flag, else the builder's/build's default."""
    if knob in base and base[knob] is not None:
        return base[knob]
    if (base.get("arch_kwargs") or {}).get(knob) is not None:
        return base["arch_kwargs"][knob]
    params = inspect.signature(archs.builder(arch)).parameters
    if knob in params:
        return params[knob].default
    return make_config(arch, base, {})[knob]


def make_config(arch: str, base: dict, knobs: dict) -> dict:
    """BuildConfig fields (JSON-ready, validated) of ``base`` with ``knobs`` applied for ``arch``."""
    from mobilekit.pipeline import BuildConfig

    accepted = arch_knob_types(arch)
    build_fields = set(_build_settings())
    fields_, arch_kwargs = {}, {}
    for key, value in base.items():  # the base may name arch knobs directly (a spec file's base)
        if key in ("arch", "out"):
            continue
        if key == "arch_kwargs":
            arch_kwargs.update(value or {})
        elif key in build_fields and not _build_settings()[key].explore:
            if value != _build_settings()[key].default:
                raise MobilekitError(f"{key}={value!r} is one build's own (where its training runs); a sweep spreads "
                                     "whole builds over Ray itself (explore's --address, --max-failures)")
        elif key in build_fields:
            fields_[key] = value
        elif key in accepted:
            arch_kwargs[key] = value
        elif key not in archs.knob_types():  # another family's knob: not for this arch
            raise MobilekitError(f"the base point has an unknown field {key!r}")
    for knob, value in knobs.items():
        if knob in BUILD_KNOBS:
            fields_[knob] = value
        elif knob in accepted:
            arch_kwargs[knob] = value
    if fields_.get("weights") is not None and fields_.get("data") is None:
        fields_["data"] = "fashion-mnist"  # a sweep trains every point: pretrained weights fine-tune on the data
    if fields_.get("precision", "int8") != "auto":  # a budget belongs to auto's points only
        fields_.pop("max_agreement_drop", None)
    if fields_.get("weights") is None:  # a scratch point of a pretrained-or-scratch sweep: no transfer settings
        for name in ("head_epochs", "fine_tune", "fine_tune_lr"):
            fields_.pop(name, None)
    record = BuildConfig(arch=arch, arch_kwargs=arch_kwargs or None, **fields_).to_dict()
    return {k: v for k, v in record.items() if k != "out"}


def point_group(arch: str, base: dict, combo: dict, seeds: int, fingerprint: str) -> list[Point]:
    """The points of one knob assignment for ``arch``: one per seed; knobs ``arch`` has not are None.

    A combination BuildConfig refuses (e.g. pruning with no pruning epochs) gives points that carry
    the one-line ``error`` instead of a config: they become failed rows, and the sweep goes on.
    """
    accepted = set(arch_knob_types(arch)) | set(BUILD_KNOBS)
    combo = {k: (v if k in accepted else None) for k, v in combo.items() if k != "arch"}
    knobs = {"arch": arch, **combo}
    try:
        config = make_config(arch, base, combo)
    except MobilekitError as e:
        seed0 = base.get("seed") or 0
        return [Point(point_id({"invalid": knobs, "seed": seed0 + s}, fingerprint), knobs, seed0 + s, {}, str(e))
                for s in range(seeds)]
    points = []
    for s in range(seeds):
        config_s = {**config, "seed": config["seed"] + s}
        points.append(Point(point_id(config_s, fingerprint), knobs, config_s["seed"], config_s))
    return points


def make_point_group(sweep: dict, knobs: dict) -> list[dict]:
    """:func:`point_group` for a Ray trial: ``knobs`` as Optuna suggested them, ``sweep`` as the driver sent it."""
    arch = knobs.get("arch") or sweep["archs"][0]
    return [dataclasses.asdict(p) for p in point_group(arch, sweep["base"], knobs, sweep["seeds"],
                                                       sweep["fingerprint"])]


def plan(cfg: ExploreConfig, fingerprint: str) -> tuple[list[Point], dict[str, list]]:
    """Every point of a grid or one-at-a-time sweep (seeds included), and the typed space.

    Points an arch cannot take (a knob it has no such metaparameter for) keep that knob as None;
    duplicates collapse. Raises MobilekitError for an unknown knob or an empty list.
    """
    check_point_count(cfg)
    space = _typed_space(cfg, arch_list(cfg))
    points: dict[str, Point] = {}
    for arch, values in base_values(cfg, space).items():
        for combo in _combinations(cfg, space, values) if space else [{}]:
            for p in point_group(arch, cfg.base, combo, cfg.seeds, fingerprint):
                points.setdefault(p.id, p)
    return list(points.values()), space


def point_count(cfg: ExploreConfig) -> int:
    """How many points the sweep asks for, counted from the value lists (nothing is made): per arch the grid's
    product (one-at-a-time: the sum) times the seeds; with Optuna, its trials times the seeds when more."""
    lengths = [len(v) if isinstance(v, (list, tuple)) else 1 for k, v in cfg.space.items() if k != "arch"]
    per_arch = sum(lengths) if cfg.search == "oneatatime" else math.prod(lengths)
    names = cfg.space.get("arch") or [cfg.base.get("arch")]
    n_archs = len(names) if isinstance(names, (list, tuple)) else len(str(names).split(","))
    grid = max(per_arch, 1) * n_archs * cfg.seeds
    return max(grid, (cfg.trials or 0) * cfg.seeds) if cfg.search == "optuna" else grid


def check_point_count(cfg: ExploreConfig) -> None:
    """Refuse, before any point is made, a sweep larger than ``cfg.max_points``."""
    n = point_count(cfg)
    if n > cfg.max_points:
        raise MobilekitError(f"the sweep asks for {n:,} points, more than --max-points {cfg.max_points:,}; "
                             "shrink the space or raise --max-points")


def base_values(cfg: ExploreConfig, space: dict) -> dict[str, dict]:
    """Per arch, the base point's value of every knob in ``space`` (None where the arch has no such knob)."""
    out = {}
    for arch in arch_list(cfg):
        accepted = set(arch_knob_types(arch)) | set(BUILD_KNOBS)
        out[arch] = {k: base_value(arch, k, cfg.base) if k in accepted else None for k in space}
    return out


def check_single_values(cfg: ExploreConfig, space: dict[str, list], classes: int) -> None:
    """Every value alone on the base point must be one the arch accepts: a bad value is an error now.

    Builds each (arch, knob=value) model once without training; combinations the builder
    rejects later (e.g. two knobs that clash) become failed rows instead.
    """
    from mobilekit.explore.screen import create_model

    for arch in arch_list(cfg):
        accepted = set(arch_knob_types(arch))
        for knob, values in space.items():
            if knob not in accepted and knob not in BUILD_KNOBS:
                continue
            for v in values:
                try:
                    config = make_config(arch, cfg.base, {knob: v})
                    if knob in accepted or knob == "input_size":
                        create_model(config, classes)
                except MobilekitError as e:
                    raise MobilekitError(f"{arch} rejects {knob}={v!r}: {e}") from None
