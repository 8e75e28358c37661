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
import socket
import time
from pathlib import Path

from ray import tune

from mobilekit.errors import MobilekitError
from mobilekit.explore import results
from mobilekit.explore.space import ExploreConfig, Point, arch_list, base_values, data_fingerprint, plan


def check_address(address: str | None) -> None:
    """An unreachable ``HOST:PORT`` is a one-line error now, not a minute-long hang inside ray.init."""
    if address is None or address == "auto" or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MobilekitError(f"--address must be HOST:PORT or auto; received {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as e:
        raise MobilekitError(f"no Ray cluster answers at --address {address}: {e.strerror or e}") from None


def _classes(data: str | None) -> int:
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
            "knobs": (["arch"] if len(arch_list(cfg)) > 1 else []) + list(space)}


class _Display:
    """The live line: points done / running / failed / screened out / left, with an ETA."""

    def __init__(self, console, total: int, sweep: dict):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.sweep, self.total, self.running = sweep, total, 0
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
    """Keeps the live line and the table current. Tune pickles its callbacks with the experiment
    state: the display (locks, a terminal) stays out of that."""

    def __init__(self, display: _Display, seeds: int):
        self.display, self.seeds = display, seeds

    def __getstate__(self):
        return {"seeds": self.seeds}

    def __setstate__(self, state):
        self.display, self.seeds = None, state["seeds"]

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

    def on_trial_error(self, iteration, trials, trial, **info):
        if self.display:
            _record_crash(self.display.sweep, trial.config, str(getattr(trial, "error_msg", "") or "worker died"))
        self.on_trial_complete(iteration, trials, trial)


def _record_crash(sweep: dict, config: dict, message: str) -> None:
    """A trial whose worker died (no row written) becomes failed rows, so the table stays whole."""
    from mobilekit.explore.space import make_point_group
    from mobilekit.explore.trial import store_failed

    points = [config["points"][config["point_id"]]] if "point_id" in config else \
        make_point_group(sweep, {k: config[k] for k in sweep["knobs"]})
    for p in points:
        store_failed(sweep, p, f"the trial's worker died: {message.strip().splitlines()[-1][:300]}")


def _ray_init(cfg: ExploreConfig):
    import ray

    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if cfg.address is None:  # its own instance, even when another Ray runs on the machine (or RAY_ADDRESS is set)
        kwargs.update(address="local", num_cpus=os.cpu_count())
    else:
        kwargs["address"] = cfg.address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise MobilekitError(f"could not start or reach Ray ({cfg.address or 'local'}): "
                             f"{str(e).strip().splitlines()[0][:200]}") from None
    for name in ("ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return ray


def _tuner(cfg: ExploreConfig, sweep: dict, pending: list[Point], callback):
    from mobilekit.explore.trial import trainable

    if cfg.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines
        space = {k: tune.choice(v) for k, v in sweep["space"].items()}
        if len(sweep["archs"]) > 1:
            space["arch"] = tune.choice(sweep["archs"])
        searcher = OptunaSearch(metric=[c for c, _ in cfg.objectives], mode=[m for _, m in cfg.objectives],
                                sampler=optuna.samplers.NSGAIISampler(seed=cfg.base.get("seed", 0) or 0))
        param_space = {**space, "sweep": sweep}
        tune_config = tune.TuneConfig(search_alg=searcher, num_samples=cfg.trials,
                                      max_concurrent_trials=cfg.max_concurrent)
    else:
        param_space = {"point_id": tune.grid_search([p.id for p in pending]),
                       "points": {p.id: dataclasses.asdict(p) for p in pending}, "sweep": sweep}
        tune_config = tune.TuneConfig(max_concurrent_trials=cfg.max_concurrent)
    run_config = tune.RunConfig(name="tune", storage_path=str(Path(sweep["dir"]) / "ray"), verbose=0,
                                callbacks=[callback], log_to_file=True)
    return tune.Tuner(tune.with_resources(trainable, {"cpu": cfg.cpus_per_trial}), param_space=param_space,
                      tune_config=tune_config, run_config=run_config)


def _screen_all(points: list[Point], sweep: dict) -> None:
    """Screening metrics for every unfinished point before any training; the points that end there (a missed
    hard target, or a screening failure) are stored as rows and never reach Ray."""
    from mobilekit.explore.trial import finished, screen_point
    from mobilekit.progress import progress

    todo = [p for p in points if finished(sweep["dir"], p.id) is None and not p.error]
    if not todo:
        return
    with progress() as bar:
        task = bar.add_task("screening (untrained int8 files"
                            + (f", ARM counts for {sweep['device']})" if sweep["device"] else ")"),
                            total=len(todo), info="")
        for p in todo:
            screen_point(dataclasses.asdict(p), sweep)
            bar.advance(task)


def explore(cfg: ExploreConfig, console=None) -> dict:
    """Run a sweep end to end (or resume it); returns the results document (results.json).

    Raises:
        MobilekitError: a bad space, target, data folder, output folder or Ray address, before any training.
    """
    from mobilekit._io import ensure_writable_dir
    from mobilekit.explore.render import render
    from mobilekit.explore.space import check_single_values
    from mobilekit.explore.trial import finished, store_failed
    from mobilekit.progress import console as default_console

    console = console or default_console
    check_address(cfg.address)
    classes = _classes(cfg.base.get("data"))
    fingerprint = data_fingerprint(cfg.base.get("data"), cfg.base.get("limit_train"), cfg.base.get("limit_test"))
    points, space = plan(cfg, fingerprint)
    if cfg.device:
        from mobilekit.emulate.root import require_ready

        require_ready()
    from mobilekit._tf import quiet_native_stderr

    with quiet_native_stderr():  # TensorFlow's first model: its CUDA probe and absl lines
        check_single_values(cfg, space, classes)  # every check before the first file is written
    out = ensure_writable_dir(cfg.out)
    sweep = sweep_document(cfg, space, fingerprint, classes)
    t0 = time.perf_counter()
    for p in points:
        if p.error and finished(out, p.id) is None:
            store_failed(sweep, dataclasses.asdict(p), p.error)  # an invalid combination: a row, never a build
    if cfg.search != "optuna":
        _screen_all(points, sweep)
    pending = [p for p in points if (row := finished(out, p.id)) is None
               or (cfg.retry_failed and row["status"] == "failed")]
    total = len(points) if cfg.search != "optuna" else cfg.trials * cfg.seeds
    console.print(f"explore: {len(points) if cfg.search != 'optuna' else total} point(s), "
                  f"{total - len(pending) if cfg.search != 'optuna' else 0} already finished or screened out; "
                  f"results in {out}/")
    display = _Display(console, total, sweep)
    if pending or cfg.search == "optuna":
        ray = _ray_init(cfg)
        try:
            with display.progress:
                display.refresh()
                _tuner(cfg, sweep, pending, _ProgressCallback(display, cfg.seeds)).fit()
                display.refresh()
        finally:
            ray.shutdown()
    doc = results.write(out, sweep)
    render(out)
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    return doc
