"""`mobilekit explore`: flags and a spec file -> ExploreConfig -> the sweep, and its summary."""

from __future__ import annotations

import json
from pathlib import Path

from mobilekit.errors import MobilekitError
from mobilekit.explore.space import (DEFAULT_OBJECTIVES, TARGET_FIELDS, ExploreConfig, parse_objectives,
                                     parse_space_arg)

SPEC_KEYS = {"base", "space", "arch", "search", "trials", "seeds", "objectives", "targets", "device", "out",
             "address", "cpus_per_trial", "max_concurrent"}
BASE_FLAGS = ("data", "test_data", "input_size", "epochs", "prune_epochs", "qat_epochs", "cluster_epochs", "recipe",
              "sparsity", "qat", "clusters", "teacher", "trust_teacher", "distill_alpha", "temperature", "seed",
              "batch_size", "lr", "optimizer", "augment", "limit_train", "limit_test", "latency_runs", "calibration",
              "bias_correction", "rewrites", "min_stage_steps", "weights", "head_epochs", "fine_tune", "fine_tune_lr",
              "label_smoothing")


def load_spec(path: str) -> dict:
    """A sweep spec (JSON, or YAML read with ``yaml.safe_load``: data only, never code)."""
    p = Path(path)
    if not p.is_file():
        raise MobilekitError(f"no such spec file: {path!r}")
    text = p.read_text(errors="replace")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            spec = yaml.safe_load(text)
        else:
            spec = json.loads(text)
    except Exception as e:  # yaml and json raise several types for bad text
        raise MobilekitError(f"spec file {path!r} is not valid {p.suffix.lstrip('.') or 'JSON'}: "
                             f"{str(e).splitlines()[0][:200]}") from None
    if not isinstance(spec, dict):
        raise MobilekitError(f"spec file {path!r} must hold a mapping with keys such as base, space, search")
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise MobilekitError(f"spec file {path!r}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(SPEC_KEYS))}")
    for key in ("base", "space", "targets"):
        if key in spec and not isinstance(spec[key], dict):
            raise MobilekitError(f"spec file {path!r}: {key} must be a mapping")
    return spec


def _pick(given: set[str], name: str, cli_value, spec: dict, spec_value_key: str | None = None, default=None):
    """The command line's value when the flag was given, else the spec's, else the flag's default."""
    key = spec_value_key or name
    if name in given or key not in spec:
        return cli_value if cli_value is not None else default
    return spec[key]


def config_from_args(args, training: dict, knobs: dict, given: set[str]) -> ExploreConfig:
    """The sweep asked for by the flags (and ``--spec``), validated; flags given on the command line win."""
    spec = load_spec(args.spec) if args.spec else {}
    cli_base = {**{k: training.get(k) for k in BASE_FLAGS if k in training}, "weights": args.weights,
                "input_size": args.input_size, "seed": args.seed, "latency_runs": args.latency_runs}
    base = {k: v for k, v in dict(spec.get("base", {})).items()}
    for name, value in cli_base.items():
        if name in given or name not in base:
            base[name] = value
    arch_kwargs = {**dict(base.pop("arch_kwargs", None) or {}), **knobs}
    if training.get("arch_kwargs") and training["arch_kwargs"].get("batch_norm") is False:
        arch_kwargs["batch_norm"] = False
    base["arch_kwargs"] = arch_kwargs or None
    base = {k: v for k, v in base.items() if v is not None or k in ("data",)}
    space = dict(spec.get("space", {}))
    for text in args.space:
        knob, values = parse_space_arg(text)
        space[knob] = values
    archs = _pick(given, "arch", args.arch, spec)
    archs = [a.strip() for a in archs.split(",")] if isinstance(archs, str) else list(archs)
    if any(not a for a in archs):
        raise MobilekitError(f"--arch has an empty name; received {args.arch!r}")
    base["arch"] = archs[0]
    if len(archs) > 1:
        space["arch"] = archs
    targets = dict(spec.get("targets", {}))
    for name in TARGET_FIELDS:
        if getattr(args, name) is not None:
            targets[name] = getattr(args, name)
    unknown = sorted(set(targets) - set(TARGET_FIELDS))
    if unknown:
        raise MobilekitError(f"unknown target {unknown[0]!r}; targets: {', '.join(TARGET_FIELDS)}")
    objectives = _pick(given, "objectives", args.objectives, spec)
    device = _pick(given, "device", args.device[0] if args.device else None, spec)
    if args.device and len(args.device) > 1:
        raise MobilekitError(f"explore takes one --device; received {','.join(args.device)}")
    return ExploreConfig(
        base=base, space=space,
        out=_pick(given, "out", args.out, spec, default="build/explore"),
        search=_pick(given, "search", args.search, spec, default="grid"),
        trials=_pick(given, "trials", args.trials, spec),
        seeds=_pick(given, "seeds", args.seeds, spec, default=1),
        targets=targets,
        objectives=parse_objectives(objectives) if objectives else DEFAULT_OBJECTIVES,
        device=device,
        address=_pick(given, "address", args.address, spec),
        cpus_per_trial=_pick(given, "cpus_per_trial", args.cpus_per_trial, spec, default=1.0),
        max_concurrent=_pick(given, "max_concurrent", args.max_concurrent, spec),
        retry_failed=args.retry_failed)


def print_summary(doc: dict, out: str) -> None:
    n = doc["counts"]
    print(f"explore -> {out}/: {n['ok']} ok, {n['failed']} failed, {n['screened_out']} screened out"
                  + (f" in {doc['seconds']:.0f} s" if "seconds" in doc else ""))
    rec = next((r for r in doc["rows"] if r["point"] == doc.get("recommended")), None)
    if rec:
        knobs = {k: rec[k] for k in doc["sweep"]["space"] if k != "arch" and rec.get(k) is not None}
        print(f"recommended: {rec['point']} {rec['arch']} {knobs} seed {rec['seed']}: int8 "
                      f"{rec['accuracy_int8']:.2%}, {rec['size_gzip_bytes'] / 1024:,.1f} KiB gzip -> {rec['tflite']}")
    else:
        print("recommended: none (no point meets every target)")
    for s in doc["saturation"].values():
        print(f"saturation of {s['knob']}: {s['saturation_value']:g} (best mean {s['best_mean']:.2%})")
    print(f"results.csv, results.json, explore.md and plots in {out}/")


def run(args, training: dict, knobs: dict, given: set[str]) -> int:
    from mobilekit.explore.engine import explore
    from mobilekit.explore.render import render

    if args.report is not None:
        doc = render(args.report)
        print_summary(doc, args.report)
        return 0
    cfg = config_from_args(args, training, knobs, given)
    doc = explore(cfg)
    print_summary(doc, cfg.out)
    return 0
