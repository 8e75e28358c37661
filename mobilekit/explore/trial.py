"""One design point: screened and stored by the driver, built on whichever Ray node Tune places it.

Nothing is shared but Ray. A trial gets everything through Ray's object store (the sweep document
without its folder, the points, their screening metrics and the data in memory, put once for the
whole sweep) and builds in a temporary folder of its own node; it returns the point's row and files
(.tflite, report.json, build.log, ...) with its ``tune.report``, and only the driver writes them:
``DIR/points/<id>/`` appears when the point is finished, written in a hidden sibling that is renamed
into place after ``point.json`` (the row). A killed sweep therefore leaves finished points whole and
unfinished ones invisible; the same command again skips every folder that holds a ``point.json``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from mobilekit.files import remove_dead_process_folders, write_bytes_atomic, write_json_atomic
from mobilekit.errors import MobilekitError
from mobilekit.json_files import read_record
from mobilekit.schema import PointRow

ARTIFACTS = "artifacts"  # the result key that carries a trial's rows and files to the driver
TRAIN_STAGES = ("teacher", "train_float_alone", "train_float", "prune", "cluster", "qat")


def point_dir(sweep_dir: str | Path, pid: str) -> Path:
    return Path(sweep_dir) / "points" / pid


def finished(sweep_dir: str | Path, pid: str) -> dict | None:
    """The stored row of a finished point, or None."""
    p = point_dir(sweep_dir, pid) / "point.json"
    if not p.is_file():
        return None
    try:
        return read_record(p, PointRow, "sweep point").to_dict()
    except (OSError, MobilekitError):  # a torn write cannot happen (atomic), but a hand-edited file can
        return None


def store(sweep_dir: str | Path, row: dict, files: dict[str, bytes] | None = None) -> dict:
    """Write a point's ``files`` (relative name -> bytes) and ``row`` as point.json, then move its folder into
    place (atomically). The driver's job only."""
    pid = row["point"]
    final = point_dir(sweep_dir, pid)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_process_folders(final.parent, f".{pid}.tmp-")  # a killed driver's half-written point
    tmp = final.with_name(f".{pid}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, content in (files or {}).items():
        target = (tmp / name).resolve()
        if tmp.resolve() not in target.parents:
            raise MobilekitError(f"a trial returned a file outside its point's folder: {name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, content)
    PointRow.from_dict(row)  # what is written reads back as a point (a SchemaError here is a bug, not input)
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
    from mobilekit.complexity import analyze
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
            "tflite": f"points/{point['id']}/{report['files']['tflite']}", "sha256": report["sha256"],
            **budget_fields(report.get("budget"))}


def budget_fields(budget: dict | None) -> dict:
    """A row's accuracy budget: the points its file lost on the validation split, and whether the budget held."""
    if not budget:
        return {}
    return {"accuracy_drop": budget["chosen"]["drop_points"], "within_budget": budget["met"]}


def run_point(point: dict, shipped: dict) -> tuple[dict, dict[str, bytes]]:
    """Build ``point`` in a temporary folder of this node; (its row, its files by relative name).

    ``shipped`` is what the driver put in the object store: ``sweep`` (classes, device, targets, ...),
    ``screened`` (metrics by point id, when the driver screened), ``data`` (a DataSource). Never raises for a
    bad point: a failure is a row with ``status="failed"`` and one line.
    """
    from rich.console import Console

    from mobilekit.explore.screen import target_checks
    from mobilekit.explore.space import Point, Targets
    from mobilekit.pipeline import build
    from mobilekit.progress import use_console

    sweep = shipped["sweep"]
    if point.get("error"):
        return _row(point, "failed", error=point["error"]), {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mobilekit-point-") as work:
        tmp = Path(work)
        screened = shipped.get("screened", {}).get(point["id"])
        if screened is None:
            screened, ended = screen_point(point, sweep, tmp / "screen")
            if ended is not None:
                return ended, {}
            shutil.rmtree(tmp / "screen", ignore_errors=True)
        with open(tmp / "build.log", "w") as log:
            console = Console(file=log, width=120, no_color=True, highlight=False)
            try:
                with use_console(console):  # the build replaces its --out whole: a folder of its own, moved up
                    report = build(Point(**point).build_config(str(tmp / "build")), console, source=shipped["data"])
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
        shutil.rmtree(tmp / "build", ignore_errors=True)
        files = {str(f.relative_to(tmp)): f.read_bytes() for f in sorted(tmp.rglob("*")) if f.is_file()}
    row["point_seconds"] = round(time.perf_counter() - t0, 2)
    if row["status"] == "ok":
        checks = target_checks(row, Targets(**sweep["targets"]))
        row["targets_met"] = {name: met for name, (met, _) in checks.items()}
        row["meets_targets"] = all(row["targets_met"].values())
    return row, files


def screen_point(point: dict, sweep: dict, cache: Path) -> tuple[dict | None, dict | None]:
    """(screening metrics, the row when the point ends here): a point whose screening fails, or that misses a
    hard target before training, ends as failed / screened out and is never trained."""
    from mobilekit.explore.screen import screen, violations
    from mobilekit.explore.space import Targets

    targets = Targets(**sweep["targets"])
    try:
        screened = screen(point["config"], sweep["classes"], sweep["device"], targets.sram_kb, cache)
    except MobilekitError as e:
        return None, _row(point, "failed", error=f"screening: {e}")
    reasons = violations({**screened, "screened": True}, targets)
    return screened, (_row(point, "screened_out", error="; ".join(reasons), **_screened_fields(screened))
                      if reasons else None)


def store_failed(sweep_dir: str | Path, point: dict, message: str, **fields) -> dict:
    """Record a point that could not be built, with its one-line reason (unless it finished meanwhile)."""
    done = finished(sweep_dir, point["id"])
    return done if done is not None else store(sweep_dir, _row(point, "failed", error=message, **fields))


def _screened_fields(screened: dict) -> dict:
    keys = ("params", "macs", "size_tflite_bytes", "size_gzip_bytes", "peak_activation_bytes", "energy_mj",
            "footprint_bytes", "latency_device_ms")
    return {k: screened.get(k) for k in keys}


def trial_points(config: dict, shipped: dict) -> list[dict]:
    """The points of one trial: the grid's point, or one per seed of Optuna's suggested knobs."""
    from mobilekit.explore.space import make_point_group

    if "point_id" in config:
        return [shipped["points"][config["point_id"]]]
    return make_point_group(shipped["sweep"], {k: config[k] for k in shipped["sweep"]["knobs"]})


def trainable(config: dict, shipped: dict | None = None) -> None:
    """Ray Tune function trainable: run the trial's points (one, or one per seed) and report once, with their
    rows and files for the driver to store (``ARTIFACTS``). Points the driver already holds are not rebuilt."""
    import ray
    from ray import tune

    node = ray.get_runtime_context().get_node_id()
    rows, artifacts = [], []
    for p in trial_points(config, shipped):
        done = shipped.get("finished", {}).get(p["id"])
        if done is not None:
            rows.append(done)
            continue
        row, files = run_point(p, shipped)
        row["node"] = node
        rows.append(row)
        artifacts.append({"row": row, "files": files})
    tune.report({**summarize(rows), ARTIFACTS: artifacts})


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
