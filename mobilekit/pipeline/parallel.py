"""One build's training stages data-parallel on Ray Train (``--workers N``, ``--address HEAD:PORT``).

:func:`mobilekit.pipeline.training.fit` hands every fit (float or fine-tune, the teacher, distillation, pruning,
clustering, QAT) to :func:`fit` here when the build is distributed. The driver keeps the models, the data and
everything after training (conversion, evaluation, checks, the report, the output folder); a fit travels as the
model it starts from (its Keras config and weights), how that model was wrapped (:class:`Wrap`: the workers wrap it
again with the same tfmot call, under the strategy's scope) and the shipped callbacks. The training images travel
once per build through Ray's object store (nothing shared but Ray).

Each worker is a Ray Train worker (``TensorflowTrainer``: it sets ``TF_CONFIG``) training one replica under
``tf.distribute.MultiWorkerMirroredStrategy`` (ring all-reduce over gRPC on CPU). The global batch is
``cfg.batch_size`` as without workers; worker ``r`` takes rows ``r*b .. (r+1)*b`` of every global batch of one seeded
order (each epoch a permutation: no example dropped or seen twice in an epoch), so the all-reduced gradient is the
global batch's mean, and the peak learning rates stay the single-process ones. BatchNormalization normalises with each
worker's own batch statistics (as data-parallel ImageNet training does; its moving statistics are averaged across
workers when read); docs/data-parallel.md says why not TensorFlow's synchronised BatchNormalization. tfmot's
pruning mask and QAT ranges are updated without a cross-replica exchange every step, and each fit's model is made again
without the strategy's exchanges (:mod:`.replica_updates`).

Faults: rank 0 keeps a checkpoint (weights, optimizer state, step) with a :class:`Keeper` actor on the driver's
node every ``1/CHECKPOINTS_PER_FIT`` of a fit; Ray Train's ``FailureConfig(max_failures)`` restarts a worker group
that lost a worker, and the new group resumes from that checkpoint. docs/data-parallel.md has the rest.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from mobilekit.errors import MobilekitError

CHECKPOINTS_PER_FIT = 10  # checkpoints of a fit's state: a lost worker costs at most a tenth of the fit
EXCHANGE_REPEATS = 10  # timed all-reduces of the gradients' shapes after a fit


@dataclass
class Wrap:
    """How the model a fit trains was made from a plain Keras model ``base``: ``kind`` is plain, prune, qat, cluster
    or distill, ``args`` what the tfmot call (or the Distiller) took."""

    kind: str = "plain"
    base: object = None
    args: dict = field(default_factory=dict)


def global_order(num: int, steps: int, batch: int, seed: int) -> np.ndarray:
    """``steps`` global batches of ``batch`` rows of ``num`` examples: seeded permutations one after another (an
    epoch is a permutation), as a flat array of indices."""
    rng = np.random.default_rng(seed)
    need = steps * batch
    parts, have = [], 0
    while have < need:
        parts.append(rng.permutation(num))
        have += num
    return np.concatenate(parts)[:need]


def shard(order: np.ndarray, steps: int, workers: int, rank: int, start: int = 0) -> np.ndarray:
    """Worker ``rank``'s rows of every global batch from step ``start`` on."""
    return order.reshape(steps, workers, -1)[start:, rank].ravel()


def to_json(model) -> str:
    """The model's architecture as it travels to the workers."""
    return model.to_json()


def from_json(text: str, weights: list):
    """A travelled model with ``weights``."""
    from mobilekit.backend import keras
    from mobilekit.layers import PASS_THROUGH_LAYERS

    model = keras.models.model_from_json(text, custom_objects={c.__name__: c for c in PASS_THROUGH_LAYERS})
    model.set_weights(weights)
    return model


def distill_wrap(student, teacher, alpha: float, temperature: float) -> Wrap:
    """How a distillation fit travels: the student as its base, the teacher as its config and weights, the mix."""
    return Wrap("distill", student, {"teacher_json": to_json(teacher), "teacher_weights": teacher.get_weights(),
                                     "alpha": alpha, "temperature": temperature})


def check_travels(model, what: str) -> None:
    """A model a fit ships (a teacher from a file) must come back from its config: refused in one line if not."""
    try:
        from_json(to_json(model), model.get_weights())
    except Exception as e:  # noqa: BLE001 - Keras raises many types for a config it cannot rebuild
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise MobilekitError(f"{what} cannot travel to the Ray Train workers (its Keras config does not rebuild: "
                             f"{reason}); train without --workers") from None


def rebuild(job: dict):
    """The model a fit trains, made again on a worker (inside the strategy's scope) from what travelled."""
    kind, args = job["wrap"]
    base = from_json(job["json"], job["base_weights"])
    if kind == "plain":
        model = base
    elif kind == "prune":
        from mobilekit.optimize import prune

        model = prune(base, args["sparsity"], end_step=args["end_step"], m_by_n=args["m_by_n"])
    elif kind == "qat":
        from mobilekit.optimize import quantize_aware

        model = quantize_aware(base, preserve_sparsity=args["preserve_sparsity"],
                               preserve_clusters=args["preserve_clusters"])
    elif kind == "cluster":
        from mobilekit.optimize import cluster

        model = cluster(base, args["clusters"], preserve_sparsity=args["preserve_sparsity"])
    elif kind == "distill":
        from mobilekit.optimize.distill import Distiller

        model = Distiller(base, from_json(args["teacher_json"], args["teacher_weights"]), args["alpha"],
                          args["temperature"])
    else:
        raise ValueError(f"unknown wrap {kind!r}")
    model.set_weights(job["weights"])
    return model


def digest(weights: list) -> str:
    """sha256 of a model's weights (values and shapes), to compare replicas."""
    h = hashlib.sha256()
    for w in weights:
        a = np.ascontiguousarray(w)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


NAMESPACE = "mobilekit"


def keeper_name(pid: int) -> str:
    """The keeper actor's name for the build driven by process ``pid`` (in Ray namespace NAMESPACE)."""
    return f"train-keeper-{pid}"


STOP = "stop"  # the job after a build's last fit: the workers leave their loop


def _keeper_class():
    import ray

    @ray.remote(num_cpus=0)
    class Keeper:
        """On the driver's node: the build's fits (jobs) in order, each one's progress, latest checkpoint, worker group
        starts and results. The workers ask it for their next job; the driver hands them in and waits here."""

        def __init__(self):
            self.jobs: list = []  # [ObjectRef] (wrapped: not resolved on the way) or STOP, by fit id
            self.fits: dict = {}

        def submit(self, job) -> int:
            self.jobs.append(job)
            fit = len(self.jobs) - 1
            if job != STOP:
                self.fits[fit] = {"steps": None, "world": 0, "step": 0, "loss": None, "starts": [],
                                  "checkpoint": None, "done": {}, "weights": None}
            return fit

        def next_job(self, fit: int):
            """Fit ``fit``'s job once handed in (None until then)."""
            return self.jobs[fit] if fit < len(self.jobs) else None

        def first_unfinished(self) -> int:
            """Where a (re)started worker group begins: the first fit some worker has not handed back."""
            return next((i for i, f in sorted(self.fits.items())
                         if f["weights"] is None or len(f["done"]) < f["world"]), len(self.jobs))

        def started(self, fit: int, step: int, steps: int, world: int) -> None:
            f = self.fits[fit]
            f["starts"].append({"resumed_at_step": step})
            f.update(steps=steps, world=world, done={}, weights=None)

        def progress(self, fit: int, step: int, loss) -> None:
            self.fits[fit].update(step=step, loss=loss)

        def save(self, fit: int, step: int, weights: list, optimizer: list) -> None:
            self.fits[fit]["checkpoint"] = {"step": step, "weights": weights, "optimizer": optimizer}

        def checkpoint(self, fit: int):
            return self.fits[fit]["checkpoint"]

        def done(self, fit: int, rank: int, record: dict, weights) -> None:
            self.fits[fit]["done"][rank] = record
            if weights is not None:
                self.fits[fit]["weights"] = weights

        def state(self, fit: int | None = None) -> dict:
            """A fit's progress (default: the latest fit's), for the driver's progress bar and for a look from
            outside (`ray.get_actor(keeper_name(pid), namespace=NAMESPACE)`)."""
            fit = max(self.fits) if fit is None and self.fits else fit
            if fit not in self.fits:
                return {"fit": None}
            f = self.fits[fit]
            return {"fit": fit, "step": f["step"], "steps": f["steps"], "loss": f["loss"], "starts": len(f["starts"]),
                    "checkpoint_step": f["checkpoint"]["step"] if f["checkpoint"] else 0, "done": len(f["done"]),
                    "returned": f["weights"] is not None}

        def result(self, fit: int) -> dict:
            f = self.fits[fit]
            out = {"starts": f["starts"], "done": f["done"], "weights": f["weights"]}
            f["weights"] = f["checkpoint"] = False  # handed over (False: finished, not None: pending)
            return out

    return Keeper


class Session:
    """The Ray of one distributed build (local, or the cluster at ``cfg.address``), its keeper actor, the worker group
    (one Ray Train run for the whole build: the workers stay up between fits and take each as a job), the data shipped
    once, and the record of every fit (report.json's ``distributed``). ``exchange=False``: each worker trains alone
    (a check's negative control, never a build's)."""

    def __init__(self, cfg, console, exchange: bool = True):
        from mobilekit import raycluster

        self.cfg, self.console, self.exchange = cfg, console, exchange
        cpus = os.cpu_count() or 1
        if cfg.address is None and cfg.workers > cpus:
            raise MobilekitError(f"workers={cfg.workers} is more than the {cpus} CPUs of this machine (each worker "
                                 "takes one); give --address of a larger cluster or fewer workers")
        self.storage = tempfile.mkdtemp(prefix="mobilekit-train-")
        self.ray = raycluster.init(cfg.address)
        self.thread = None
        self.outcome: dict = {}
        try:
            self._check_capacity()
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = self.ray.get_runtime_context().get_node_id()
            self.keeper = _keeper_class().options(
                name=keeper_name(os.getpid()), namespace=NAMESPACE,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
            self._start_workers()
        except BaseException:
            self.close()
            raise
        self.data: dict = {}
        self.fits: list[dict] = []

    def _check_capacity(self) -> None:
        """Refused now, not waited for: more workers than the cluster's nodes can place at one CPU each."""
        from mobilekit.raycluster import alive_nodes

        nodes = alive_nodes(self.ray)
        slots = sum(int(float(n.get("Resources", {}).get("CPU", 0))) for n in nodes)
        if self.cfg.workers > slots:
            where = f"the cluster at {self.cfg.address}" if self.cfg.address else "the local Ray"
            raise MobilekitError(f"workers={self.cfg.workers} is more than the {slots} CPU(s) {where} can place "
                                 f"({len(nodes)} node(s)); each worker takes one CPU")

    def _start_workers(self) -> None:
        """The build's Ray Train run, in a thread of its own: ``cfg.workers`` workers, restarted on a failure."""
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.tensorflow import TensorflowTrainer

        cfg = self.cfg
        trainer = TensorflowTrainer(
            worker_loop, train_loop_config={"keeper": self.keeper, "strategy": self.exchange},
            scaling_config=ScalingConfig(num_workers=cfg.workers, resources_per_worker={"CPU": 1},
                                         placement_strategy="SPREAD"),
            run_config=RunConfig(name="build", storage_path=self.storage,
                                 failure_config=FailureConfig(max_failures=cfg.max_failures)))

        def run():
            try:
                trainer.fit()
            except BaseException as e:  # noqa: BLE001 - reported by the fit that waits for it
                self.outcome["error"] = e

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def failure(self, title: str, restarts: int = 0) -> MobilekitError | None:
        """The one-line error of a worker group that stopped for good (after ``restarts`` in the fit it was in), None
        while it runs."""
        if self.thread is not None and self.thread.is_alive():
            return None
        e = self.outcome.get("error")
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] if e else []
        lost = e is not None and any(w in str(e) for w in ("died", "CollectiveReduce", "unavailable", "UNAVAILABLE",
                                                            "heartbeat", "node"))
        why = ("a worker was lost (its process or node died)" if lost else
               f"{type(e).__name__}: {lines[0][:200] if lines else ''}" if e else "the workers stopped")
        restarts += sum(len(f["restarts"]) for f in self.fits)
        return MobilekitError(f"data-parallel {title} failed on {self.cfg.workers} workers after {restarts} "
                              f"restart(s) (--max-failures {self.cfg.max_failures}): {why}")

    def where(self) -> str:
        from mobilekit.raycluster import cluster_line

        return (f"the cluster at {self.cfg.address}" if self.cfg.address else "a local Ray") + \
            f" ({cluster_line(self.ray)})"

    def close(self) -> None:
        import shutil

        from mobilekit import raycluster

        if self.thread is not None and self.thread.is_alive() and getattr(self, "keeper", None) is not None:
            try:
                self.ray.get(self.keeper.submit.remote(STOP), timeout=30)
                self.thread.join(30)  # idle workers leave at once; after a failed build, Ray's shutdown stops them
            except Exception:  # noqa: BLE001 - Ray is shut down next either way
                pass
        raycluster.shutdown(self.ray)
        shutil.rmtree(self.storage, ignore_errors=True)

    def data_ref(self, x, y):
        key = (id(x), id(y))
        if key not in self.data:
            self.data[key] = (self.ray.put((x, y)), x, y)  # the arrays kept alive with their id
        return self.data[key][0]

    def section(self) -> dict:
        """report.json's ``distributed``."""
        cfg = self.cfg
        nodes = next((f["nodes"] for f in reversed(self.fits)), [])
        steps = sum(f["steps"] for f in self.fits)

        def mean(key):
            total = sum(f[key] * f["steps"] for f in self.fits if f.get(key) is not None)
            return round(total / steps, 5) if steps else None

        return {"workers": cfg.workers, "address": cfg.address, "nodes": nodes, "global_batch": cfg.batch_size,
                "per_worker_batch": cfg.batch_size // cfg.workers,
                "learning_rate": {"rule": "the single-process peak rates: the global batch is the same, so the "
                                          "gradient of each step is the same mean",
                                  "per_fit": {f["title"]: f["lr"] for f in self.fits}},
                "restarts": sum(len(f["restarts"]) for f in self.fits),
                "max_failures": cfg.max_failures,
                "seconds_per_step": {"step": mean("step_s"), "compute": mean("compute_s"),
                                     "gradient_exchange": mean("exchange_s")},
                "replicas_identical": all(f["replicas_identical"] for f in self.fits),
                "fits": self.fits}


_SESSION: list[Session] = []


def start(cfg, console, exchange: bool = True) -> Session:
    """The build's distributed session (Ray started or reached, the cluster's capacity checked, the workers
    starting)."""
    session = Session(cfg, console, exchange)
    _SESSION.append(session)
    return session


def stop() -> None:
    while _SESSION:
        _SESSION.pop().close()


def current() -> Session:
    if not _SESSION:
        raise RuntimeError("a distributed fit outside a distributed build (parallel.start)")
    return _SESSION[-1]


def fit(model, x, y, cfg, n: int, lr: float, title: str, callbacks, seed_offset: int, wrap: Wrap | None,
        eager: bool = False) -> dict:
    """Train ``model`` (on the driver: its weights are replaced by the trained ones) for ``n`` steps on the
    session's workers, eagerly if ``eager`` (a few steps: training.EAGER_MAX_STEPS); returns the fit's record."""
    session = current()
    ray = session.ray
    wrap = wrap or Wrap("plain", model)
    job = {"json": to_json(wrap.base), "base_weights": wrap.base.get_weights(), "wrap": (wrap.kind, wrap.args),
           "weights": model.get_weights(), "callbacks": list(callbacks), "cfg": cfg, "steps": n, "lr": lr,
           "seed_offset": seed_offset, "eager": eager, "data": [session.data_ref(x, y)]}
    t0 = time.perf_counter()
    fit_id = ray.get(session.keeper.submit.remote([ray.put(job)]))
    _wait_with_progress(session, fit_id, n, title)
    result = ray.get(session.keeper.result.remote(fit_id))
    model.set_weights(result["weights"])
    done = [result["done"][r] for r in sorted(result["done"])]
    record = {"title": title, "steps": n, "lr": lr, "seconds": round(time.perf_counter() - t0, 2),
              "nodes": [d["node"] for d in done],
              "restarts": [{"resumed_at_step": s["resumed_at_step"]} for s in result["starts"][1:]],
              "replicas_identical": len({d["digest"] for d in done}) == 1,
              "weights_sha256": [d["digest"] for d in done],
              **{k: done[0][k] for k in ("step_s", "compute_s", "exchange_s", "exchange_latency_s", "first_step_s")}}
    session.fits.append(record)
    return record


def _wait_with_progress(session: Session, fit_id: int, n: int, title: str) -> None:
    """Until every worker handed fit ``fit_id`` back: a progress bar from the keeper's counts, a line per restart;
    the one-line error of a worker group that stopped for good."""
    from mobilekit import progress

    bar = progress.progress()
    bar.start()
    task = bar.add_task(f"{title} ({session.cfg.workers} workers)", total=n, info="")
    seen = 0  # worker group starts already said
    try:
        while True:
            state = session.ray.get(session.keeper.state.remote(fit_id))
            bar.update(task, completed=state["step"],
                       info=f"loss={state['loss']:.3f}" if state["loss"] is not None else "")
            if state["starts"] > max(1, seen):
                session.console.print(f"   a worker was lost: the worker group restarted from step "
                                      f"{state['checkpoint_step']} of {n}")
            seen = max(seen, state["starts"])
            if state["returned"] and state["done"] == session.cfg.workers:
                return
            error = session.failure(title, max(0, seen - 1))
            if error is not None:
                raise error
            time.sleep(0.5)
    finally:
        bar.stop()


def worker_loop(config: dict) -> None:
    """One Ray Train worker for the whole build: the strategy made once, then each fit the keeper hands out (from the
    first one not finished, after a restart), until STOP."""
    import ray
    import ray.train

    from mobilekit.backend import tf

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    # TensorFlow's thread pools sized to the CPUs Ray gave this worker, not to the machine's cores (workers sharing a
    # machine would fight over them); set before the strategy, before any op.
    cpus = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    tf.config.threading.set_intra_op_parallelism_threads(cpus)
    tf.config.threading.set_inter_op_parallelism_threads(cpus)
    if config["strategy"]:
        from mobilekit.pipeline import replica_updates

        replica_updates.install()  # tfmot's per-step exchanges that need not be (this process trains nothing else)
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if config["strategy"] else tf.distribute.get_strategy()
    keeper = config["keeper"]
    data: dict = {}
    fit_id = ray.get(keeper.first_unfinished.remote())
    while True:
        item = ray.get(keeper.next_job.remote(fit_id))
        if item is None:
            time.sleep(0.1)
            continue
        if item == STOP:
            break
        job = ray.get(item[0])
        key = job["data"][0].hex()
        if key not in data:
            data.clear()
            data[key] = ray.get(job["data"][0])
        _train(job, data[key], fit_id, keeper, strategy, config["strategy"], rank, world)
        fit_id += 1
    ray.train.report({"rank": rank})


def _train(job: dict, xy: tuple, fit_id: int, keeper, strategy, exchange: bool, rank: int, world: int) -> None:
    """One fit on this worker: the model made again under the strategy, resumed from the keeper's checkpoint, trained
    on this worker's rows of every global batch; its weights' digest (and rank 0's weights) to the keeper."""
    import ray

    from mobilekit import tasks
    from mobilekit.backend import keras
    from mobilekit.pipeline import replica_updates

    x, y = xy
    replica_updates.forget_ranges()
    cfg, n = job["cfg"], job["steps"]
    keras.utils.set_random_seed(cfg.seed + job["seed_offset"] + rank)
    task = tasks.of(cfg.arch)
    with strategy.scope(), replica_updates.local_rebuild(strategy):
        model = rebuild(job)
        loss, _, one_hot = task.loss(cfg, model)
        schedule = keras.optimizers.schedules.CosineDecay(job["lr"], n)  # as training.fit's (no import cycle)
        optimizer = (keras.optimizers.Adam(schedule) if cfg.optimizer == "adam"
                     else keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True))
        # No metrics but the loss (the driver measures the model), and the logs read from this replica: each metric
        # and each log summed over the replicas was a collective of its own every step (6 of a plain step's 8).
        # The loss's running mean is still averaged over the replicas inside the step: it is the global batch's.
        model.compile(optimizer, loss, run_eagerly=job["eager"])
        model.distribute_reduction_method = "first"
        optimizer.build(model.trainable_variables)
    start = 0
    saved = ray.get(keeper.checkpoint.remote(fit_id))
    if saved:
        model.set_weights(saved["weights"])
        for variable, value in zip(optimizer.variables, saved["optimizer"]):
            variable.assign(value)
        start = saved["step"]
    node = ray.get_runtime_context().get_node_id()
    if rank == 0:
        ray.get(keeper.started.remote(fit_id, start, n, world))
    per = cfg.batch_size // world
    rows = shard(global_order(len(x), n, cfg.batch_size, cfg.seed + job["seed_offset"]), n, world, rank, start)

    def dataset(input_context=None):
        return task.train_dataset(x, y, cfg, job["seed_offset"], one_hot, order=rows, batch=per)

    data = _keep_iterator(strategy.distribute_datasets_from_function(dataset)) if exchange else dataset()
    watch = _callback_class()(keeper, fit_id, rank, start, n, optimizer)
    if n > start:
        model.fit(data, epochs=1, steps_per_epoch=n - start, verbose=0, callbacks=[*job["callbacks"], watch])
    if exchange and world > 1:
        replica_updates.average_ranges(strategy, model)  # QAT's ranges, kept per replica during the fit
    seconds, latency = _exchange_seconds(strategy, model) if exchange and world > 1 else (0.0, 0.0)
    weights = model.get_weights()  # every rank: BatchNormalization's moving statistics are read across replicas
    steady = watch.steady_step_s()
    record = {"rank": rank, "node": node, "digest": digest(weights), "step_s": steady,
              "exchange_s": round(seconds, 5), "exchange_latency_s": round(latency, 6),
              "compute_s": round(max(0.0, steady - seconds), 5) if steady is not None else None,
              "first_step_s": watch.first_step_s}
    ray.get(keeper.done.remote(fit_id, rank, record, weights if rank == 0 else None))


_KEPT: list = []  # the distributed datasets' iterators of this worker's fits (_keep_iterator)


def _keep_iterator(data):
    """``data`` (a distributed dataset) whose iterators outlive the fit: they are kept until the worker leaves.

    tf_keras drops its iterator when ``fit`` returns, and destroying a MultiWorkerMirroredStrategy iterator (its
    MultiDeviceIterator waiting for a tf.data thread) held the worker for 1 to 60 s at random: 108 s of a 354-s
    default build on two workers, while the other worker waited in the next collective. A kept iterator holds its
    order and a prefetched batch or two."""
    kept = type(data)

    class Kept(kept):
        def __iter__(self):
            iterator = super().__iter__()
            _KEPT.append(iterator)
            return iterator

    data.__class__ = Kept
    return data


def _exchange_seconds(strategy, model) -> tuple[float, float]:
    """(seconds of one all-reduce of tensors shaped as the trainable variables: the gradients' bytes, as the fit's
    steps exchange them; seconds of one all-reduce of a single float: the per-message latency), each the mean of
    EXCHANGE_REPEATS after one untimed."""
    from mobilekit.backend import tf

    def timed(tensors) -> float:
        @tf.function
        def exchange():
            def replica(values):
                return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)

            return strategy.run(replica, args=(tensors,))

        exchange()
        t0 = time.perf_counter()
        for _ in range(EXCHANGE_REPEATS):
            exchange()
        return (time.perf_counter() - t0) / EXCHANGE_REPEATS

    return (timed([tf.zeros(v.shape, v.dtype) for v in model.trainable_variables]),
            timed([tf.zeros([1], tf.float32)]))


def _callback_class():
    """The workers' Keras callback class (made on first use: importing this module loads no TensorFlow)."""
    global _CALLBACK
    if _CALLBACK is None:
        from mobilekit.backend import keras

        class WorkerCallback(keras.callbacks.Callback):
            """On every worker: the step's time. Rank 0: its progress, and every ``n / CHECKPOINTS_PER_FIT`` steps its
            weights and optimizer state, kept with the keeper."""

            def __init__(self, keeper, fit_id: int, rank: int, start: int, steps: int, optimizer):
                super().__init__()
                self.keeper, self.fit_id, self.rank = keeper, fit_id, rank
                self.start, self.steps, self.optimizer = start, steps, optimizer
                self.every = max(1, steps // CHECKPOINTS_PER_FIT)
                self.times: list[float] = []
                self.first_step_s = None
                self._t = None

            def on_train_batch_begin(self, batch, logs=None):
                self._t = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                import ray

                elapsed = time.perf_counter() - self._t
                if self.first_step_s is None:
                    self.first_step_s = round(elapsed, 4)
                else:
                    self.times.append(elapsed)
                step = self.start + batch + 1
                if self.rank == 0:
                    loss = (logs or {}).get("loss")
                    self.keeper.progress.remote(self.fit_id, step, None if loss is None else float(loss))
                if step % self.every == 0 and step < self.steps and self.rank == 0:
                    ray.get(self.keeper.save.remote(self.fit_id, step, self._local(self.model.weights),
                                                    self._local(self.optimizer.variables)))

            def _local(self, variables) -> list:
                """This replica's values, read without a collective (BatchNormalization's moving statistics are
                rank 0's own, not the workers' mean: a checkpoint resumes from them; the fit's end reads the mean)."""
                local = self.model.distribute_strategy.experimental_local_results
                return [local(v)[0].numpy() for v in variables]

            def steady_step_s(self) -> float | None:
                """The median step after the first (which traces)."""
                return round(float(np.median(self.times)), 5) if self.times else None

        _CALLBACK = WorkerCallback
    return _CALLBACK


_CALLBACK = None
