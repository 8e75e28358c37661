"""One design point, run where Ray places it: screen, build with `mobilekit build`'s own code, record.

A point's folder ``DIR/points/<id>/`` appears only when the point is finished: the build writes
into a hidden sibling that is renamed into place after ``point.json`` (the row) is written in
it. A killed sweep therefore leaves finished points whole and unfinished ones invisible; the
same command again skips every folder that holds a ``point.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from pathlib import Path

from mobilekit._io import remove_dead_process_folders, write_json_atomic
from mobilekit.errors import MobilekitError

TRAIN_STAGES = ("teacher", "train_float_alone", "train_float", "prune", "cluster", "qat")


def point_dir(sweep_dir: str | Path, pid: str) -> Path:
    return Path(sweep_dir) / "points" / pid


def finished(sweep_dir: str | Path, pid: str) -> dict | None:
    """The stored row of a finished point, or None."""
    p = point_dir(sweep_dir, pid) / "point.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):  # a torn write cannot happen (atomic), but a hand-edited file can
        return None


def _store(sweep: dict, pid: str, row: dict, tmp: Path | None = None) -> dict:
    """Write ``row`` as point.json and move the point's folder into place (atomically)."""
    final = point_dir(sweep["dir"], pid)
    if tmp is None:
        tmp = final.with_name(f".{pid}.tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
    write_json_atomic(tmp / "point.json", row)
    if final.exists():  # a failed row being retried, or a leftover without point.json
        shutil.rmtree(final)
    os.replace(tmp, final)
    return row


def _row(point: dict, status: str, **fields) -> dict:
    return {"point": point["id"], "knobs": point["knobs"], "seed": point["seed"], "status": status,
            "config": point["config"], **fields}


def _measured(report: dict, out: Path, screened: dict, point: dict, sweep: dict) -> dict:
    """The row's metrics, read from the build's report and its int8 file."""
    from mobilekit.bench.energy import energy_per_frame
    from mobilekit.tflite_analysis import analyze
    from mobilekit.tflite_file import TfliteFile

    content = (out / report["files"]["tflite"]).read_bytes()
    f = TfliteFile(content)
    a = analyze(f)
    energy = energy_per_frame(f, a, sweep["targets"].get("sram_kb") or 0)
    seconds = report["stage_seconds"]
    return {"accuracy_int8": report["accuracy"]["tflite_int8"], "accuracy_float": report["accuracy"]["keras_float"],
            "test_images": report["accuracy"]["test_images"],
            "size_tflite_bytes": report["sizes"]["int8_tflite_bytes"],
            "size_gzip_bytes": report["sizes"]["int8_gzip_bytes"],
            "latency_host_ms": report["latency"]["median_ms"],
            # Dense int8 kernels execute the same instructions whatever the weight values:
            # the screened count of this architecture config stands for the trained file.
            "latency_device_ms": screened.get("latency_device_ms"), "device_instructions": screened.get("instructions"),
            "energy_mj": float(energy["total_mj"][1]), "footprint_bytes": int(energy["footprint_bytes"]),
            "params": report["params"], "macs": report["macs"],
            "peak_activation_bytes": int(a["peak_activation"]["bytes"]),
            "train_seconds": round(sum(seconds.get(s, 0.0) for s in TRAIN_STAGES), 2),
            "wall_seconds": seconds.get("total"), "stage_seconds": seconds,
            "fits_sram": (energy["footprint_bytes"] <= sweep["targets"]["sram_kb"] * 1024
                          if sweep["targets"].get("sram_kb") else None),
            "screened_size_gzip_bytes": screened["size_gzip_bytes"],
            "tflite": f"points/{point['id']}/{report['files']['tflite']}", "sha256": report["sha256"]}


def run_point(point: dict, sweep: dict) -> dict:
    """Screen, then build ``point`` into ``DIR/points/<id>/``; the row (also stored as point.json).

    ``sweep`` holds ``dir``, ``classes``, ``device`` and ``targets`` (a dict of Targets fields).
    Never raises for a bad point: a failure is a row with ``status="failed"`` and one line.
    """
    from rich.console import Console

    from mobilekit.explore.screen import target_checks
    from mobilekit.explore.space import Point, Targets
    from mobilekit.pipeline import build
    from mobilekit.progress import use_console

    done = finished(sweep["dir"], point["id"])
    if done is not None and not (sweep.get("retry_failed") and done["status"] == "failed"):
        return {**done, "cached": True}
    if point.get("error"):
        return store_failed(sweep, point, point["error"])
    t0 = time.perf_counter()
    targets = Targets(**sweep["targets"])
    screened, ended = screen_point(point, sweep)
    if ended is not None:
        return ended
    tmp = point_dir(sweep["dir"], point["id"]).with_name(f".{point['id']}.tmp-{os.getpid()}")
    remove_dead_process_folders(tmp.parent, f".{point['id']}.tmp-")  # a killed sweep's half-built point
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with open(tmp / "build.log", "w") as log:
        console = Console(file=log, width=120, no_color=True, highlight=False)
        try:
            with use_console(console):  # the build replaces its --out whole: a folder of its own, moved up
                report = build(Point(**point).build_config(str(tmp / "build")), console)
            for artifact in (tmp / "build").iterdir():
                os.replace(artifact, tmp / artifact.name)
            (tmp / "build").rmdir()
            row = _row(point, "ok", **_measured(report, tmp, screened, point, sweep))
        except MobilekitError as e:
            row = _row(point, "failed", error=str(e), **_screened_fields(screened))
        except Exception as e:  # a diverged or crashed build is a row, and the sweep goes on
            log.write(traceback.format_exc())
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            row = _row(point, "failed", error=f"{type(e).__name__}: {first[:300]} (points/{point['id']}/build.log)",
                       **_screened_fields(screened))
    row["point_seconds"] = round(time.perf_counter() - t0, 2)
    if row["status"] == "ok":
        checks = target_checks(row, targets)
        row["targets_met"] = {name: met for name, (met, _) in checks.items()}
        row["meets_targets"] = all(row["targets_met"].values())
    return _store(sweep, point["id"], row, tmp)


def screen_point(point: dict, sweep: dict) -> tuple[dict | None, dict | None]:
    """(screening metrics, the stored row when the point ends here): a point whose screening fails, or that
    misses a hard target before training, is stored as failed / screened out and never trained."""
    from mobilekit.explore.screen import screen, violations
    from mobilekit.explore.space import Targets

    targets = Targets(**sweep["targets"])
    try:
        screened = screen(point["config"], sweep["classes"], sweep["device"], targets.sram_kb,
                          Path(sweep["dir"]) / "screen")
    except MobilekitError as e:
        return None, store_failed(sweep, point, f"screening: {e}")
    reasons = violations({**screened, "screened": True}, targets)
    return screened, (store_screened(sweep, point, screened, reasons) if reasons else None)


def store_screened(sweep: dict, point: dict, screened: dict, reasons: list[str]) -> dict:
    """Record a point that misses a hard target before training (it is never trained)."""
    return _store(sweep, point["id"], _row(point, "screened_out", error="; ".join(reasons),
                                           **_screened_fields(screened)))


def store_failed(sweep: dict, point: dict, message: str) -> dict:
    """Record a point that could not be built, with its one-line reason (unless it finished meanwhile)."""
    done = finished(sweep["dir"], point["id"])
    return done if done is not None else _store(sweep, point["id"], _row(point, "failed", error=message))


def _screened_fields(screened: dict) -> dict:
    keys = ("params", "macs", "size_tflite_bytes", "size_gzip_bytes", "peak_activation_bytes", "energy_mj",
            "footprint_bytes", "latency_device_ms")
    return {k: screened.get(k) for k in keys}


def trainable(config: dict) -> None:
    """Ray Tune function trainable: run the trial's points (one, or one per seed) and report once.

    ``config["point_ids"]`` (grid / one-at-a-time) names points in ``config["points"]``; otherwise the
    knobs are Optuna's suggestion and the points are made here, one per seed.
    """
    from ray import tune

    from mobilekit.explore.space import make_point_group

    sweep = config["sweep"]
    if "point_id" in config:
        points = [config["points"][config["point_id"]]]
    else:
        knobs = {k: config[k] for k in sweep["knobs"]}
        points = make_point_group(sweep, knobs)
    rows = [run_point(p, sweep) for p in points]
    tune.report(summarize(rows))


def summarize(rows: list[dict]) -> dict:
    """A trial's metrics for Ray Tune: means over its seeds; a point that is not ok counts as worst."""
    ok = [r for r in rows if r["status"] == "ok"]
    mean = (lambda k: sum(r[k] for r in ok) / len(ok)) if ok else None
    worst = 1e18  # finite: Optuna rejects non-finite objective values
    out = {"points": [r["point"] for r in rows], "ok": len(ok), "statuses": [r["status"] for r in rows]}
    for column in ("accuracy_int8",):
        out[column] = mean(column) if ok else 0.0
    for column in ("size_gzip_bytes", "size_tflite_bytes", "latency_host_ms", "latency_device_ms", "energy_mj",
                   "params", "macs", "peak_activation_bytes", "train_seconds"):
        values = [r.get(column) for r in ok]
        out[column] = sum(values) / len(values) if ok and None not in values else worst
    return out
