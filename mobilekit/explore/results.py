"""A sweep's table: rows from the finished points, the Pareto front, saturation points, CSV and JSON.

Rendering (plots, explore.md) lives in mobilekit.explore.render; this module only computes and
writes data, atomically, so a reader never sees half a table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from mobilekit.files import write_json_atomic, write_text_atomic
from mobilekit.errors import MobilekitError
from mobilekit.json_files import read_record
from mobilekit.schema import POINT_STATUSES, PointRow, SweepResults

METRIC_COLUMNS = ("status", "accuracy_int8", "accuracy_float", "size_tflite_bytes", "size_gzip_bytes",
                  "latency_host_ms", "latency_device_ms", "energy_mj", "params", "macs", "peak_activation_bytes",
                  "train_seconds", "accuracy_drop", "within_budget", "pareto", "meets_targets", "tflite", "error")


def collect(sweep_dir: str | Path) -> list[dict]:
    """Every finished point's row (``points/*/point.json``), in a stable order."""
    rows = []
    for p in sorted((Path(sweep_dir) / "points").glob("*/point.json")):
        try:
            rows.append(read_record(p, PointRow, "sweep point").to_dict())
        except (OSError, MobilekitError):
            continue
    return rows


def dominates(a: dict, b: dict, objectives) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for column, mode in objectives:
        x, y = a[column], b[column]
        if x is None or y is None:
            return False
        if (x < y if mode == "max" else x > y):
            return False
        if x != y:
            better = True
    return better


def pareto_ids(rows: list[dict], objectives) -> set[str]:
    """Points of the ``ok`` rows within their accuracy budget (or built without one) that no other such row
    dominates: a front compares designs at the same accuracy cost, and a point over its budget is marked, not on it."""
    ok = [r for r in rows if r["status"] == "ok" and r.get("within_budget") is not False
          and all(r.get(c) is not None for c, _ in objectives)]
    return {r["point"] for r in ok if not any(dominates(o, r, objectives) for o in ok if o is not r)}


def recommended(rows: list[dict]) -> dict | None:
    """The most accurate ok row that meets every target and its accuracy budget (ties: the smaller gzip file)."""
    good = [r for r in rows if r["status"] == "ok" and r.get("meets_targets") and r.get("within_budget") is not False]
    return max(good, key=lambda r: (r["accuracy_int8"], -r["size_gzip_bytes"])) if good else None


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    var = sum((v - m) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return m, math.sqrt(var)


def seed_noise(rows: list[dict]) -> tuple[float | None, int]:
    """(pooled sd of int8 accuracy over the seeds of each design, seeds per design); (None, 1) with one seed."""
    designs: dict = {}
    for r in rows:
        if r["status"] == "ok":
            designs.setdefault(json.dumps(r["knobs"], sort_keys=True), []).append(r["accuracy_int8"])
    repeated = [v for v in designs.values() if len(v) > 1]
    if not repeated:
        return None, 1
    pooled = math.sqrt(sum(_mean_std(v)[1] ** 2 for v in repeated) / len(repeated))
    return pooled, min(len(v) for v in repeated)


def saturation(rows: list[dict], knob: str, base: dict[str, dict]) -> dict | None:
    """Accuracy per value of ``knob`` with the other knobs at the base point, and where it saturates.

    Noise is the pooled standard deviation over the seeds of each design; the saturation value
    is the smallest value whose mean accuracy is within two standard errors of a difference of
    means (2 * sd * sqrt(2 / seeds)) of the best mean. With one seed there is no noise estimate
    and the best value is reported. Where no two values were measured with the other knobs at
    the base point (a grid without the base values), each value's mean is over the other knobs.
    Returns None for a knob with fewer than two numeric values measured.
    """
    ok = [r for r in rows if r["status"] == "ok" and r["knobs"].get(knob) is not None]
    on_axis = [r for r in ok if all(v == base.get(r["knobs"]["arch"], {}).get(k)
                                    for k, v in r["knobs"].items() if k not in (knob, "arch"))]
    def value(r):  # a pair (an HxW input size) reads back from JSON as a list
        v = r["knobs"][knob]
        return tuple(v) if isinstance(v, list) else v

    axis = len({value(r) for r in on_axis}) >= 2
    groups: dict = {}
    for r in on_axis if axis else ok:
        groups.setdefault(value(r), []).append(r["accuracy_int8"])
    if len(groups) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in groups):
        return None
    curve = []
    for value in sorted(groups):
        mean, sd = _mean_std(groups[value])
        curve.append({"value": value, "mean": mean, "std": sd, "n": len(groups[value])})
    noise, seeds = seed_noise(on_axis if axis else ok)
    margin = 2 * noise * math.sqrt(2 / seeds) if noise is not None else 0.0
    best = max(c["mean"] for c in curve)
    saturates = next(c["value"] for c in curve if c["mean"] >= best - margin)
    return {"knob": knob, "curve": curve, "best_mean": best, "noise_std": noise, "margin": margin,
            "saturation_value": saturates, "seeds": seeds, "on_axis": axis,
            "method": ("smallest value within 2 * sd * sqrt(2 / seeds) of the best mean" if noise is not None
                       else "one seed: no noise estimate, the best value")
            + ("" if axis else "; means over the other knobs (no base-point axis)")}


def table(rows: list[dict], sweep: dict) -> list[dict]:
    """Rows with ``pareto`` and ``meets_targets`` set, flattened to the CSV's columns."""
    objectives = [tuple(o) for o in sweep["objectives"]]
    targets = [k for k, v in sweep["targets"].items() if v is not None]
    front = pareto_ids(rows, objectives)
    knobs = ["arch", *[k for k in sweep["space"] if k != "arch"]]
    out = []
    for r in rows:
        flat = {"point": r["point"], **{k: r["knobs"].get(k) for k in knobs}, "seed": r["seed"]}
        for column in METRIC_COLUMNS:
            flat[column] = r.get(column)
        flat["pareto"] = r["point"] in front
        flat["meets_targets"] = bool(r.get("meets_targets")) if r["status"] == "ok" else False
        for name in targets:  # one column per target given: met or not (empty when not measured)
            flat[f"meets_{name}"] = (r.get("targets_met") or {}).get(name)
        out.append(flat)
    order = {k: i for i, k in enumerate(knobs)}
    return sorted(out, key=lambda f: (tuple(repr(f[k]) for k in sorted(order, key=order.get)), f["seed"]))


def write(sweep_dir: str | Path, sweep: dict) -> dict:
    """Rewrite results.json and results.csv from the finished points; returns the results document."""
    rows = collect(sweep_dir)
    flat = table(rows, sweep)
    rec = recommended(flat)
    knobs = [k for k in sweep["space"] if k != "arch"]
    doc = SweepResults(sweep=sweep, counts={s: sum(r["status"] == s for r in rows) for s in POINT_STATUSES},
                       screened_out={r["point"]: r.get("error") for r in rows if r["status"] == "screened_out"},
                       recommended=rec["point"] if rec else None,
                       saturation={k: s for k in knobs if (s := saturation(rows, k, sweep["base_values"])) is not None},
                       rows=flat).to_dict()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(flat[0]) if flat else ["point", *METRIC_COLUMNS],
                            lineterminator="\n")
    writer.writeheader()
    for f in flat:
        writer.writerow({k: ("" if v is None else str(v).lower() if isinstance(v, bool) else v) for k, v in f.items()})
    write_text_atomic(Path(sweep_dir) / "results.csv", buf.getvalue())
    write_json_atomic(Path(sweep_dir) / "results.json", doc)
    return doc
