"""Training helpers shared by the stages: the input pipeline, step counts, one fit (with the arch's task's
loss, mobilekit.tasks)."""

from __future__ import annotations

import time

from mobilekit.backend import keras
from mobilekit.pipeline.profile import record as _record


def throughput(profile: dict, batch_size: int) -> dict:
    """``profile`` (a stage's sums) with its rates: training images/s after each fit's first step (which
    traces and compiles), evaluation images/s."""
    out = dict(profile)
    steady = profile.get("train_s", 0) - profile.get("first_step_s", 0)
    images = profile.get("train_images", 0) - profile.get("fits", 0) * batch_size
    if steady > 0 and images > 0:
        out["train_images_per_s"] = round(images / steady, 1)
    if profile.get("evaluate_s"):
        out["evaluate_images_per_s"] = round(profile["evaluate_images"] / profile["evaluate_s"], 1)
    return out


def steps(cfg, num_images: int, epochs: float, min_steps: int = 1) -> int:
    """Optimizer steps for ``epochs`` passes (fractions allowed) over ``num_images``, at least ``min_steps``."""
    return max(1, min_steps, int(round(epochs * max(1, num_images // cfg.batch_size))))


# A fit of at most this many optimizer steps runs eagerly (per kind of stage). Tracing a training function is a
# fixed cost that a long stage repays with faster steps and a short one never does: on a 2-core Xeon, tracing
# took 3-6 s for a float model, 4-7 s with QAT's fake-quant ops and 15-19 s with tfmot's pruning wrappers, while
# an eager step cost 0.4-1.4 s more than a traced one. Eager and traced cost the same at 6-9 (float), 9-11 (QAT)
# and 14-27 (pruning) steps for SqueezeNet 1.1 and MobileNetV2; each limit is at or below the lower end, so a
# stage run eagerly is never the slower choice. Long stages (the default build's) trace as before.
EAGER_MAX_STEPS = {"float": 6, "qat": 8, "cluster": 8, "prune": 12}


def eager_fit(n: int, stage: str) -> bool:
    """Whether a fit of ``n`` steps of kind ``stage`` runs eagerly (EAGER_MAX_STEPS)."""
    return n <= EAGER_MAX_STEPS[stage]


def fit(model, x, y, cfg, epochs: float, lr: float, title: str, callbacks=(), seed_offset: int = 0,
        min_steps: int = 1, stage: str = "float", compiled: bool = False, wrap=None) -> int:
    """Train ``epochs`` passes (at least ``min_steps`` optimizer steps) with a cosine-decayed ``lr`` and a
    progress bar; returns the steps taken. ``stage`` (a key of EAGER_MAX_STEPS) says how few steps run
    eagerly; evaluation afterwards is traced either way. ``compiled``: ``model`` was compiled by an earlier fit of
    the same steps and rate, and its optimizer's state reset since: its traced training step is reused.

    A distributed build (``--workers``, ``--address``) trains on Ray Train workers instead
    (mobilekit.pipeline.parallel); ``wrap`` (a parallel.Wrap) says how ``model`` was made from a plain model, for the
    workers to make it again."""
    from mobilekit import tasks
    from mobilekit.pipeline.config import distributed

    n = steps(cfg, len(x), epochs, min_steps)
    eager = eager_fit(n, stage)
    if distributed(cfg):
        from mobilekit.pipeline import parallel

        record = parallel.fit(model, x, y, cfg, n, lr, title, callbacks, seed_offset, wrap, eager)
        # Starting the worker group and tracing count as the first step: the steps after it set the images/s.
        steady = record["step_s"]
        first = max(0.0, record["seconds"] - steady * (n - 1)) if steady else record["seconds"]
        _record_fit(n, cfg.batch_size, first, record["seconds"], eager)
        return n
    task = tasks.of(cfg.arch)
    loss, metrics, one_hot = task.loss(cfg, model)
    if not compiled:
        schedule = keras.optimizers.schedules.CosineDecay(lr, n)
        optimizer = (keras.optimizers.Adam(schedule) if cfg.optimizer == "adam"
                     else keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True))
        model.compile(optimizer, loss, metrics, run_eagerly=eager)
        _create_variables(model, optimizer, x, task.labels(y[:cfg.batch_size], one_hot), cfg)
    progress = ProgressCallback(title, n)
    t0 = time.perf_counter()
    model.fit(task.train_dataset(x, y, cfg, seed_offset, one_hot), epochs=1, steps_per_epoch=n, verbose=0,
              callbacks=[progress, *callbacks])
    end = time.perf_counter()
    model.run_eagerly = False
    # The first step traces and compiles the training function (unless eager): its own entry, out of the images/s.
    first = (progress.first_step_end or end) - t0
    _record_fit(n, cfg.batch_size, first, end - t0, eager)
    _record("reused_fits", int(compiled))
    return n


def _record_fit(n: int, batch: int, first: float, seconds: float, eager: bool) -> None:
    """One fit of ``n`` steps in the stage's throughput: its images, its first step (tracing) and all its seconds."""
    _record("train_steps", n)
    _record("train_images", n * batch)
    _record("first_step_s", first)
    _record("train_s", seconds)
    _record("fits", 1)
    _record("eager_fits", int(eager))


def _create_variables(model, optimizer, x, labels, cfg) -> None:
    """Create the optimizer's slots and the compiled loss and metric variables before ``fit``.

    A tf.function whose first call creates variables is traced twice; Keras creates these lazily in its
    first training step, so every stage paid two traces of its graph (tfmot's pruning graph: 4 s each on
    2 cores). Made here, ``fit`` traces once. Inference-mode calls only: no weight, BN statistic, mask or
    random state changes, and ``fit`` resets the metrics it starts with.
    """
    if type(model).train_step is not keras.Model.train_step:
        return  # a custom train step (distillation) computes its own losses
    from mobilekit.data import to_float

    images = to_float(x[:cfg.batch_size])
    optimizer.build(model.trainable_variables)
    outputs = model(images, training=False)
    model.compiled_loss(labels, outputs, regularization_losses=model.losses)
    model.compiled_metrics.update_state(labels, outputs)
    model.reset_metrics()


class ProgressCallback(keras.callbacks.Callback):
    """One progress bar over all training steps, showing running loss and accuracy."""

    def __init__(self, description: str, total_steps: int):
        super().__init__()
        self.description = description
        self.total_steps = total_steps
        self._progress = None
        self._task = None
        self.first_step_end = None

    def on_train_begin(self, logs=None):
        from mobilekit import progress  # its console may be redirected (progress.use_console)

        self._progress = progress.progress()
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.total_steps, info="")

    def on_train_batch_end(self, batch, logs=None):
        if self.first_step_end is None:
            self.first_step_end = time.perf_counter()
        logs = logs or {}
        info = " ".join(f"{k}={v:.3f}" for k, v in logs.items() if k in ("loss", "accuracy"))
        self._progress.update(self._task, advance=1, info=info)

    def on_train_end(self, logs=None):
        self._progress.stop()
