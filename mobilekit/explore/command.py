"""`mobilekit explore`: flags and a spec file -> ExploreConfig -> the sweep, and its summary."""

from __future__ import annotations

import json
from pathlib import Path

from mobilekit._checks import plain_number
from mobilekit.errors import MobilekitError
from mobilekit.explore.space import (DEFAULT_OBJECTIVES, MAX_FAILURES, MAX_POINTS, TARGET_FIELDS, ExploreConfig,
                                     parse_objectives, parse_space_arg)

# The type of each top-level spec key (a bool is never a number here).
SPEC_TYPES = {"base": dict, "space": dict, "targets": dict, "arch": (str, list), "search": str, "trials": int,
              "seeds": int, "objectives": (str, list), "device": str, "out": str, "address": str,
              "cpus_per_trial": (int, float), "max_concurrent": int, "max_points": int,
              "schedule_timeout": (int, float), "max_failures": int}
SPEC_KEYS = set(SPEC_TYPES)


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise ValueError(f"duplicate key {dup!r}")
    return dict(pairs)


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number here")


def _yaml_loader():
    """yaml.SafeLoader (data only, never code) that also refuses duplicate keys and numbers that are not plain
    ASCII decimals (YAML 1.1 reads ``1_0``, ``0x1f``, ``1:30`` and ``.inf`` as numbers)."""
    import yaml
    from yaml.constructor import ConstructorError

    class SpecLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise ConstructorError(None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep)

        def _plain(self, node, kind):
            try:
                return plain_number(node.value, kind)
            except ValueError:
                raise ConstructorError(None, None, f"{node.value!r} is not a plain decimal number",
                                       node.start_mark) from None

        def construct_yaml_int(self, node):
            return self._plain(node, int)

        def construct_yaml_float(self, node):
            return self._plain(node, float)

    SpecLoader.add_constructor("tag:yaml.org,2002:int", SpecLoader.construct_yaml_int)
    SpecLoader.add_constructor("tag:yaml.org,2002:float", SpecLoader.construct_yaml_float)
    return SpecLoader


def _check_types(spec: dict, path: str) -> None:
    for key, kind in SPEC_TYPES.items():
        if key not in spec:
            continue
        v = spec[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(v, bool) or not isinstance(v, kinds):
            names = " or ".join("a list" if k is list else "a mapping" if k is dict else k.__name__ for k in kinds)
            raise MobilekitError(f"spec file {path!r}: {key} must be {names}; received {v!r}"[:300])
        if isinstance(v, list) and not all(isinstance(x, str) for x in v):
            raise MobilekitError(f"spec file {path!r}: {key} must list names (text); received {v!r}"[:300])
    for name, values in spec.get("space", {}).items():
        if not isinstance(name, str) or not isinstance(values, list):
            raise MobilekitError(f"spec file {path!r}: space.{name} must be a list of values; received {values!r}"
                                 [:300])
    if not all(isinstance(k, str) for k in (*spec.get("base", {}), *spec.get("targets", {}))):
        raise MobilekitError(f"spec file {path!r}: base and targets take names as keys")


def load_spec(path: str) -> dict:
    """A sweep spec (JSON, or YAML read with a safe loader: data only, never code), its keys and types checked."""
    p = Path(path)
    if not p.is_file():
        raise MobilekitError(f"no such spec file: {path!r}")
    text = p.read_text(errors="replace")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            spec = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
        else:
            spec = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except Exception as e:  # yaml and json raise several types for bad text
        raise MobilekitError(f"spec file {path!r} is not valid {p.suffix.lstrip('.') or 'JSON'}: "
                             f"{str(e).splitlines()[0][:200]}") from None
    if not isinstance(spec, dict):
        raise MobilekitError(f"spec file {path!r} must hold a mapping with keys such as base, space, search")
    unknown = sorted(set(map(str, spec)) - SPEC_KEYS)
    if unknown:
        raise MobilekitError(f"spec file {path!r}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(SPEC_KEYS))}")
    _check_types(spec, path)
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
    cli_base = {k: v for k, v in training.items() if k not in ("arch", "arch_kwargs")}  # the build flags
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
    flagged = set()
    for text in args.space:
        knob, values = parse_space_arg(text)
        if knob in flagged:
            raise MobilekitError(f"--space names {knob} twice; give its values once (--space {knob}=V1,V2,...)")
        flagged.add(knob)
        space[knob] = values
    if "arch" not in given and "arch" not in spec and isinstance(spec.get("base", {}).get("arch"), str):
        archs = spec["base"]["arch"]  # the spec's base point names the arch
    else:
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
        max_points=_pick(given, "max_points", args.max_points, spec, default=MAX_POINTS),
        schedule_timeout=_pick(given, "schedule_timeout", args.schedule_timeout, spec, default=600.0),
        max_failures=_pick(given, "max_failures", args.max_failures, spec, default=MAX_FAILURES),
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
