"""The sweep driver: plan, screen, run the points on Ray Tune, keep the table current, render.

Ray is the engine: a local Ray started for the sweep by default (trial concurrency = the
machine's CPUs / ``cpus_per_trial``), or an existing cluster with ``address`` (Ray's own
``ray.init(address=...)`` convention; nothing else changes). Grid and one-at-a-time sweeps are a
``tune.grid_search`` over the unfinished points; ``optuna`` is Ray Tune's OptunaSearch with
Optuna's NSGA-II sampler over the same knobs and the sweep's objectives.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from ray import tune

from mobilekit import archs, raycluster
from mobilekit.errors import MobilekitError
from mobilekit.json_files import read_record
from mobilekit.schema import SweepResults
from mobilekit.explore import results
from mobilekit.explore.space import ExploreConfig, Point, arch_list, base_values, data_fingerprint, plan


RAY_CLIENT_HINT = ("submit the sweep to the cluster instead: "
                   "`ray job submit --address http://HEAD:8265 -- mobilekit explore ...`")


def check_address(address: str | None) -> None:
    """:func:`mobilekit.raycluster.check_address` with explore's word on Ray Client and dashboard URLs."""
    raycluster.check_address(address, "explore drives Ray Tune on the cluster itself and takes the head's HOST:PORT "
                                      f"(as `ray start --head` prints); or {RAY_CLIENT_HINT}")


SWEEP_LOCK = ".explore.lock"  # held by the running driver; its presence marks a sweep folder


def _is_sweep_folder(path: Path) -> bool:
    lock = path / SWEEP_LOCK
    if lock.is_file() and not lock.is_symlink():
        return True
    try:  # a sweep written before the lock file existed
        read_record(path / "results.json", SweepResults, "sweep results")
    except (OSError, MobilekitError):
        return False
    return True


def check_sweep_folder(out: str) -> Path:
    """``--out`` must be absent, empty, or a sweep folder (this command's earlier output): anything else is a
    user's folder, refused before anything is written."""
    from mobilekit.files import check_output_path

    path = check_output_path(out, "dir", "--out")
    if path.is_dir() and any(path.iterdir()) and not _is_sweep_folder(path):
        raise MobilekitError(f"--out folder {str(out)!r} is not empty and holds no sweep (no {SWEEP_LOCK} or sweep "
                             "results.json); choose an empty or new folder")
    return path


def check_cpus(cfg: ExploreConfig, cluster_cpus: float | None = None) -> None:
    """A trial asking for more CPUs than one node has would wait forever: refused before anything starts."""
    have = cluster_cpus if cluster_cpus is not None else float(os.cpu_count() or 1)
    if cfg.cpus_per_trial > have:
        where = "the largest node of the cluster" if cluster_cpus is not None else "this machine"
        raise MobilekitError(f"--cpus-per-trial {cfg.cpus_per_trial:g} is more than the {have:g} CPUs of {where}: "
                             "no trial could ever start")


def _largest_node_cpus(ray) -> float:
    return max([float(n.get("Resources", {}).get("CPU", 0)) for n in raycluster.alive_nodes(ray)] or [0.0])


def _task(cfg: ExploreConfig) -> str:
    """The one task of the sweep's archs (a sweep compares one metric: top-1 or mAP@0.5).

    Raises:
        MobilekitError: archs of both tasks.
    """
    tasks = {archs.task_of(arch): arch for arch in arch_list(cfg)}
    if len(tasks) > 1:
        raise MobilekitError(f"--arch mixes a detector and a classifier ({', '.join(sorted(tasks.values()))}): a sweep "
                             "compares one metric, top-1 or mAP@0.5; sweep them apart")
    return next(iter(tasks))


def _snapshot(cfg: ExploreConfig):
    """The sweep's data in memory, read once by the driver (it travels to the workers through Ray)."""
    data, test_data = cfg.base.get("data"), cfg.base.get("test_data")
    if _task(cfg) == "detection":
        from mobilekit.tasks.detection import detection_source

        return detection_source(data, test_data)
    from mobilekit.data import DataSource

    return DataSource.snapshot(data, test_data)


def _classes(data: str | None, task: str = "classification") -> int:
    """The data's class count: Fashion-MNIST's (a detector's embedded set has its classes), a detection folder's
    annotations' or an image folder's sub-folders."""
    if task == "detection" and data is not None:
        from mobilekit.detection.formats import read_detection_set

        return len(read_detection_set(data).class_names)
    if data in (None, "fashion-mnist"):
        from mobilekit.data import FASHION_MNIST_CLASSES

        return len(FASHION_MNIST_CLASSES)
    from mobilekit.data import scan_image_folder

    return len(scan_image_folder(data))


def sweep_document(cfg: ExploreConfig, space: dict, fingerprint: str, classes: int) -> dict:
    """Everything a trial and the renderer need, JSON-ready (it travels to Ray workers and into results.json)."""
    return {"dir": str(Path(cfg.out).resolve()), "archs": arch_list(cfg), "base": cfg.base, "space": space,
            "base_values": base_values(cfg, space), "search": cfg.search, "trials": cfg.trials, "seeds": cfg.seeds,
            "objectives": [list(o) for o in cfg.objectives], "targets": dataclasses.asdict(cfg.targets),
            "device": cfg.device, "classes": classes, "fingerprint": fingerprint, "retry_failed": cfg.retry_failed,
            "knobs": (["arch"] if len(arch_list(cfg)) > 1 else []) + list(space),
            "metric": "mAP@0.5" if _task(cfg) == "detection" else "top-1"}


class _Display:
    """The live line: points done / running / failed / screened out / left, with an ETA."""

    def __init__(self, console, total: int, sweep: dict):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.sweep, self.total, self.running, self.points = sweep, total, 0, {}
        self.progress = Progress(TextColumn("  explore"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=console, transient=False)
        self.task = self.progress.add_task("explore", total=total, info="")

    def refresh(self) -> dict:
        doc = results.write(self.sweep["dir"], self.sweep)
        n = doc["counts"]
        finished = n["ok"] + n["failed"] + n["screened_out"]
        left = max(0, self.total - finished - self.running)
        self.progress.update(self.task, completed=min(finished, self.total),
                             info=f"{n['ok']} ok · {self.running} running · {n['failed']} failed · "
                                  f"{n['screened_out']} screened out · {left} left")
        return doc


class _ProgressCallback(tune.Callback):
    """Stores what trials return (the driver alone writes the sweep folder) and keeps the live line and the
    table current. Tune pickles its callbacks with the experiment state: the display (locks, a terminal) stays
    out of that."""

    def __init__(self, display: _Display, seeds: int, schedule_timeout: float | None = None):
        self.display, self.seeds, self.timeout, self.waiting_since = display, seeds, schedule_timeout, None
        self.store_seconds, self.stored_bytes = 0.0, 0

    def __getstate__(self):
        return {"seeds": self.seeds, "timeout": self.timeout}

    def __setstate__(self, state):
        self.display, self.seeds, self.timeout, self.waiting_since = None, state["seeds"], state["timeout"], None
        self.store_seconds, self.stored_bytes = 0.0, 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        """A trial's rows and files, taken out of the result (Tune keeps results in its state) and stored."""
        from mobilekit.explore.trial import ARTIFACTS, finished, store

        artifacts = result.pop(ARTIFACTS, None) or []
        if self.display is None:
            return
        t0 = time.perf_counter()
        out = self.display.sweep["dir"]
        for a in artifacts:
            done = finished(out, a["row"]["point"])
            if done is None or done["status"] == "failed":  # Optuna may suggest a design twice: the first stays
                store(out, {**a["row"], "attempts": trial.num_failures + 1}, a["files"])
                self.stored_bytes += sum(len(b) for b in a["files"].values())
        self.store_seconds += time.perf_counter() - t0

    def on_step_end(self, iteration, trials, **info):
        """A sweep whose trials wait with none running for ``timeout`` seconds stops with one line."""
        if self.timeout is None or self.display is None:
            return
        statuses = {t.status for t in trials}
        if "RUNNING" in statuses or "PENDING" not in statuses:
            self.waiting_since = None
        elif self.waiting_since is None:
            self.waiting_since = time.monotonic()
        elif time.monotonic() - self.waiting_since > self.timeout:
            raise MobilekitError(f"no point could start for {self.timeout:g} s: the cluster has no free CPUs for a "
                                 "trial (busy, or its nodes are gone); finished points are kept, run the command "
                                 "again to resume (--schedule-timeout sets the wait)")

    def _points(self, trial) -> int:
        return 1 if "point_id" in trial.config else self.seeds

    def on_trial_start(self, iteration, trials, trial, **info):
        if self.display:
            self.display.running += self._points(trial)
            self.display.refresh()

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.display:
            self.display.running = max(0, self.display.running - self._points(trial))
            self.display.refresh()

    def on_trial_recover(self, iteration, trials, trial, **info):
        """Its worker or node died; Tune runs it again (``--max-failures``): one line says so."""
        if self.display:
            self.display.running = max(0, self.display.running - self._points(trial))
            self.display.progress.console.print(
                f"  a trial lost its worker or node ({_last_line(getattr(trial, 'error_msg', ''))}); running it "
                f"again, attempt {trial.num_failures + 1}")
            self.display.refresh()

    def on_trial_error(self, iteration, trials, trial, **info):
        if self.display:
            _record_crash(self.display, trial, str(getattr(trial, "error_msg", "") or "worker died"))
        self.on_trial_complete(iteration, trials, trial)


def _record_crash(display: _Display, trial, message: str) -> None:
    """A trial whose worker died on every attempt (no row came back) becomes failed rows: the table stays whole."""
    from mobilekit.explore.space import make_point_group
    from mobilekit.explore.trial import store_failed

    sweep, config = display.sweep, trial.config
    points = [display.points[config["point_id"]]] if "point_id" in config else \
        make_point_group(sweep, {k: config[k] for k in sweep["knobs"]})
    for p in points:
        store_failed(sweep["dir"], p, f"the trial's worker died on each of {trial.num_failures} attempt(s): "
                                      f"{_last_line(message)}", attempts=trial.num_failures)


def _last_line(message) -> str:
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no reason given"



def _tuner(cfg: ExploreConfig, sweep: dict, pending: list[Point], callback, shipped: dict, storage: str):
    """Tune over the unfinished points. What trials need travels once through the object store
    (``tune.with_parameters``); a trial's config holds only its point id (grid) or Optuna's knobs."""
    from mobilekit.explore.trial import trainable

    if cfg.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines
        param_space = {k: tune.choice(v) for k, v in sweep["space"].items()}
        if len(sweep["archs"]) > 1:
            param_space["arch"] = tune.choice(sweep["archs"])
        searcher = OptunaSearch(metric=[c for c, _ in cfg.objectives], mode=[m for _, m in cfg.objectives],
                                sampler=optuna.samplers.NSGAIISampler(seed=cfg.base.get("seed", 0) or 0))
        tune_config = tune.TuneConfig(search_alg=searcher, num_samples=cfg.trials,
                                      max_concurrent_trials=cfg.max_concurrent)
    else:
        param_space = {"point_id": tune.grid_search([p.id for p in pending])}
        tune_config = tune.TuneConfig(max_concurrent_trials=cfg.max_concurrent)
    run_config = tune.RunConfig(name="tune", storage_path=storage, verbose=0, callbacks=[callback],
                                failure_config=tune.FailureConfig(max_failures=cfg.max_failures))
    shipping = tune.with_parameters(trainable, shipped=shipped)  # ray.put here, once
    return tune.Tuner(tune.with_resources(shipping, {"cpu": cfg.cpus_per_trial}), param_space=param_space,
                      tune_config=tune_config, run_config=run_config)


def _shipped(cfg: ExploreConfig, sweep: dict, pending: dict[str, dict], screened: dict, out: Path) -> dict:
    """Everything a trial reads, for the object store: the sweep without its folder, the points, their
    screening metrics, the rows Optuna's repeats may reuse and the data in memory. No path a worker must open."""
    from mobilekit.explore.results import collect

    finished_rows = {}
    if cfg.search == "optuna":
        finished_rows = {r["point"]: r for r in collect(out) if not (cfg.retry_failed and r["status"] == "failed")}
    return {"sweep": {k: v for k, v in sweep.items() if k != "dir"},
            "points": pending,
            "screened": {pid: screened[pid] for pid in pending if pid in screened},
            "finished": finished_rows,
            "data": _snapshot(cfg)}


def _screen_all(points: list[Point], sweep: dict) -> dict:
    """Screening metrics for every unfinished point before any training, by point id; the points that end there
    (a missed hard target, or a screening failure) are stored as rows and never reach Ray."""
    from mobilekit.explore.trial import finished, screen_point, store
    from mobilekit.progress import progress

    todo = [p for p in points if finished(sweep["dir"], p.id) is None and not p.error]
    metrics = {}
    if not todo:
        return metrics
    with progress() as bar:
        task = bar.add_task("screening (untrained int8 files"
                            + (f", ARM counts for {sweep['device']})" if sweep["device"] else ")"),
                            total=len(todo), info="")
        for p in todo:
            screened, ended = screen_point(dataclasses.asdict(p), sweep, Path(sweep["dir"]) / "screen")
            if ended is not None:
                store(sweep["dir"], ended)
            else:
                metrics[p.id] = screened
            bar.advance(task)
    return metrics


def _job_address() -> str | None:
    """Inside `ray job submit`: the cluster the job runs on (Ray gives the entrypoint its address in RAY_ADDRESS)."""
    if os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") and os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    return None


def _check_shippable(cfg: ExploreConfig) -> None:
    """What cannot travel to a cluster's workers, refused before anything is written."""
    from mobilekit.pipeline.config import teacher_is_file

    teacher = cfg.base.get("teacher")
    if cfg.address is not None and isinstance(teacher, str) and teacher_is_file(teacher):
        raise MobilekitError(f"--teacher {teacher!r}: a teacher model file does not travel to a cluster's workers; "
                             "name a registry teacher (ARCH or ARCH:WEIGHTS) or run the sweep without --address")


def explore(cfg: ExploreConfig, console=None) -> dict:
    """Run a sweep end to end (or resume it); returns the results document (results.json).

    Raises:
        MobilekitError: a bad space, target, data folder, output folder or Ray address, before any training.
    """
    from mobilekit.files import ensure_writable_dir, folder_lock
    from mobilekit.explore.space import check_single_values
    from mobilekit.progress import console as default_console

    console = console or default_console
    if cfg.address is None and (job := _job_address()) is not None:  # a `ray job submit` driver: its cluster
        cfg = dataclasses.replace(cfg, address=job)
    _check_shippable(cfg)
    check_address(cfg.address)
    check_sweep_folder(cfg.out)
    if cfg.address is None:
        check_cpus(cfg)
    classes = _classes(cfg.base.get("data"), _task(cfg))
    fingerprint = data_fingerprint(cfg.base.get("data"), cfg.base.get("limit_train"), cfg.base.get("limit_test"))
    points, space = plan(cfg, fingerprint)
    if cfg.device:
        from mobilekit.emulate.root import require_ready

        require_ready()
    from mobilekit.backend import quiet_native_stderr

    with quiet_native_stderr():  # TensorFlow's first model: its CUDA probe and absl lines
        check_single_values(cfg, space, classes)  # every check before the first file is written
    ray = None
    if cfg.address is not None:  # connect first: the cluster's CPUs are checked before anything is written
        ray = raycluster.init(cfg.address)
    try:
        if ray is not None:
            check_cpus(cfg, _largest_node_cpus(ray))
        out = ensure_writable_dir(cfg.out)
        with folder_lock(out, SWEEP_LOCK, "sweep folder"):
            return _sweep(cfg, out, points, space, fingerprint, classes, console, ray)
    finally:
        if ray is not None and ray.is_initialized():
            raycluster.shutdown(ray)


def _sweep(cfg: ExploreConfig, out: Path, points: list[Point], space: dict, fingerprint: str, classes: int,
           console, ray) -> dict:
    """The sweep proper, in a locked folder: failed rows for invalid points, screening, the trials, the table."""
    import shutil
    import tempfile

    from mobilekit.files import remove_dead_process_folders
    from mobilekit.explore.render import render
    from mobilekit.explore.trial import finished, store_failed

    sweep = sweep_document(cfg, space, fingerprint, classes)
    t0 = time.perf_counter()
    for p in points:
        if p.error and finished(out, p.id) is None:
            store_failed(out, dataclasses.asdict(p), p.error)  # an invalid combination: a row, never a build
    screened = _screen_all(points, sweep) if cfg.search != "optuna" else {}
    pending = [p for p in points if (row := finished(out, p.id)) is None
               or (cfg.retry_failed and row["status"] == "failed")]
    total = len(points) if cfg.search != "optuna" else cfg.trials * cfg.seeds
    console.print(f"explore: {len(points) if cfg.search != 'optuna' else total} point(s), "
                  f"{total - len(pending) if cfg.search != 'optuna' else 0} already finished or screened out; "
                  f"results in {out}/")
    display = _Display(console, total, sweep)
    display.points = {p.id: dataclasses.asdict(p) for p in pending}  # what a crashed trial's rows are made from
    driver = {"ship_seconds": 0.0, "shipped_bytes": 0, "store_seconds": 0.0, "stored_bytes": 0}
    if pending or cfg.search == "optuna":
        local = ray is None
        ray = ray or raycluster.init(cfg.address)
        remove_dead_process_folders(Path(tempfile.gettempdir()), "mobilekit-tune-")  # a killed driver's
        storage = tempfile.mkdtemp(prefix=f"mobilekit-tune-{os.getpid()}-")  # Tune's own state; not the sweep's
        try:
            where = "a local Ray of this sweep" if local else cfg.address
            console.print(f"  on {raycluster.cluster_line(ray)} ({where}), {cfg.cpus_per_trial:g} CPU(s) per point")
            t_ship = time.perf_counter()
            shipped = _shipped(cfg, sweep, display.points, screened, out)
            callback = _ProgressCallback(display, cfg.seeds, cfg.schedule_timeout)
            tuner = _tuner(cfg, sweep, pending, callback, shipped, storage)  # the object store holds it from here
            driver.update(ship_seconds=round(time.perf_counter() - t_ship, 3), shipped_bytes=shipped["data"].nbytes)
            with display.progress:
                display.refresh()
                tuner.fit()
                display.refresh()
            driver.update(store_seconds=round(callback.store_seconds, 3), stored_bytes=callback.stored_bytes)
        finally:
            shutil.rmtree(storage, ignore_errors=True)
            if local:
                raycluster.shutdown(ray)
    for p in pending if cfg.search != "optuna" else ():  # every point asked for ends as a row
        if finished(out, p.id) is None:
            store_failed(out, dataclasses.asdict(p), "no result came back from Ray for this point")
    doc = results.write(out, sweep)
    render(out)
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    doc["driver"] = driver
    return doc
