"""The `mobilekit build` pipeline, driven by a compression recipe (mobilekit.recipes).

float training -> pruning (magnitude to ``sparsity``, or m-by-n) -> strip -> [fold BN,
clustering + fine-tune] -> QAT (PQAT / CQAT / PCQAT, or post-training quantization) ->
full-integer int8 conversion at batch 1 -> flatbuffer checks (what survived, per layer) ->
accuracy of the Keras float model and of the int8 file on the held-out test set -> batch-1
latency -> artifacts written atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mobilekit import archs
from mobilekit._io import ensure_writable_dir, write_bytes_atomic, write_json_atomic, write_text_atomic
from mobilekit._checks import validate_sparsity
from mobilekit._tf import keras, tf, tfmot
from mobilekit.errors import MobilekitError


# What `build` adds to the paper architecture when it trains from scratch on a
# CPU budget (docs/training-budget.md): BN after each conv (folds away at
# conversion) and linear class scores instead of ReLU'd ones.
TRAINING_ARCH_KWARGS = {"batch_norm": True, "classifier_relu": False}
# Fine-tuning budgets when neither the recipe nor the flags set them.
STAGE_EPOCHS = {"prune_epochs": 0.5, "cluster_epochs": 0.5, "qat_epochs": 0.25}


@dataclass(frozen=True)
class BuildConfig:
    """Settings of one build; every field is recorded in report.json.

    Example: ``build(BuildConfig(arch="squeezenet", epochs=1, out="build/try"))``.
    """

    arch: str = "squeezenet"
    data: str | None = None  # None: Fashion-MNIST; else a folder with one sub-folder per class
    input_size: int | None = None  # None: 48 when training, 224 with ``weights``
    epochs: float = 1.5
    prune_epochs: float | None = None  # None: the recipe's, else 0.5
    qat_epochs: float | None = None  # None: the recipe's, else 0.25
    recipe: str = "prune-int8"  # mobilekit.recipes.PRESETS; the three fields below override it
    sparsity: float | None = None  # None: the recipe's
    qat: bool | None = None  # None: the recipe's
    clusters: int | None = None  # None: the recipe's
    cluster_epochs: float | None = None  # None: the recipe's, else 0.5
    teacher: str | None = None  # distillation: a Keras model file or a registered arch (trained first)
    distill_alpha: float = 0.5  # weight of the hard-label loss; 1 - alpha on the teacher's soft outputs
    temperature: float = 4.0
    seed: int = 0
    out: str | None = None  # default build/<arch>/
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adam"
    arch_kwargs: dict | None = None  # None: TRAINING_ARCH_KWARGS the builder accepts
    augment: bool = False
    calibration_samples: int = 256
    limit_train: int | None = None
    limit_test: int | None = None
    latency_runs: int = 100
    latency_warmup: int = 10
    weights: str | None = None  # "imagenet": pretrained weights, no training (mobilenet_v2)
    devices: tuple[str, ...] = ()  # phones to predict the int8 file's latency on (emulated ARM counts)

    def __post_init__(self):
        object.__setattr__(self, "arch", archs.resolve(self.arch))
        if self.input_size is None:
            object.__setattr__(self, "input_size", 224 if self.weights else 48)
        if self.weights is not None:
            from mobilekit.pretrained import check_pretrained_config
            check_pretrained_config(self)
        if self.weights is None:
            from mobilekit.recipes import Recipe

            preset = Recipe.preset(self.recipe)
            for name, default in STAGE_EPOCHS.items():
                if getattr(self, name) is None:
                    value = getattr(preset, name)
                    object.__setattr__(self, name, default if value is None else value)
        for name in ("epochs", *STAGE_EPOCHS):
            v = getattr(self, name)
            if v is None and self.weights is not None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise MobilekitError(f"{name} must be a non-negative number; received {name}={v!r}")
        if self.weights is None:
            spec = self.spec  # unknown recipe or bad overrides fail here
            for name in ("sparsity", "qat", "clusters"):
                object.__setattr__(self, name, getattr(spec, name))
            validate_sparsity(self.sparsity)
        positive = ("input_size", "batch_size", "calibration_samples", "latency_runs")
        for name in positive:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise MobilekitError(f"{name} must be a positive int; received {name}={v!r}")
        for name in ("limit_train", "limit_test"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise MobilekitError(f"{name} must be a positive int; received {name}={v!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise MobilekitError(f"lr must be a positive number; received lr={self.lr!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise MobilekitError(f"optimizer must be 'adam' or 'sgd'; received optimizer={self.optimizer!r}")
        _arch_kwargs(self)  # unknown metaparameters fail here, before any data is loaded
        if self.devices:
            from mobilekit.bench.devices import device
            from mobilekit.emulate.root import require_ready

            object.__setattr__(self, "devices", tuple(device(d).name for d in self.devices))
            require_ready()  # before any training: the counts need the arm64 root
        if self.teacher is not None:
            from mobilekit.optimize.distill import check_distill

            check_distill(self.distill_alpha, self.temperature)
            if not Path(self.teacher).is_file():
                object.__setattr__(self, "teacher", archs.resolve(self.teacher))  # else: unknown arch, named
        if self.weights is None and self.spec.prunes and self.prune_epochs == 0:
            raise MobilekitError(f"pruning ({self.recipe}, sparsity={self.sparsity}) needs prune_epochs > 0; "
                                 f"received prune_epochs={self.prune_epochs}")

    @property
    def spec(self):
        """The recipe with this config's overrides (``sparsity``, ``qat``, ``clusters``) applied."""
        from mobilekit.recipes import Recipe

        return Recipe.resolve(self.recipe, self.sparsity, self.qat, self.clusters)

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("build") / self.arch


class _Stages:
    """Wall-clock seconds per pipeline stage, with a console line per stage."""

    def __init__(self, console):
        self.console = console
        self.seconds: dict[str, float] = {}

    def run(self, name: str, title: str, fn, *args, **kw):
        self.console.print(f"[bold]{len(self.seconds) + 1}. {title}[/bold]")
        t0 = time.perf_counter()
        result = fn(*args, **kw)
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        return result


def _train_dataset(x, y, cfg: BuildConfig, seed_offset: int):
    from mobilekit.data import OFFSET, SCALE

    def prep(images, labels):
        images = tf.cast(images, tf.float32) * SCALE + OFFSET
        if cfg.augment:
            images = tf.image.random_flip_left_right(images, seed=cfg.seed + seed_offset)
        return images, labels

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=cfg.seed + seed_offset, reshuffle_each_iteration=True).repeat()
    return ds.batch(cfg.batch_size, drop_remainder=True).map(prep).prefetch(2)


def _steps(cfg: BuildConfig, num_images: int, epochs: float) -> int:
    """Optimizer steps for ``epochs`` passes (fractions allowed) over ``num_images``."""
    return max(1, int(round(epochs * max(1, num_images // cfg.batch_size))))


def _fit(model, x, y, cfg: BuildConfig, epochs: float, lr: float, title: str,
         callbacks=(), seed_offset: int = 0) -> None:
    """Train ``epochs`` passes with a cosine-decayed ``lr`` and a progress bar."""
    from mobilekit.progress import ProgressCallback

    steps = _steps(cfg, len(x), epochs)
    schedule = keras.optimizers.schedules.CosineDecay(lr, steps)
    optimizer = (keras.optimizers.Adam(schedule) if cfg.optimizer == "adam"
                 else keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True))
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(_train_dataset(x, y, cfg, seed_offset), epochs=1, steps_per_epoch=steps, verbose=0,
              callbacks=[ProgressCallback(title, steps), *callbacks])


def _teacher(cfg: BuildConfig, ds, x_test):
    """(teacher model, its test accuracy): loaded from ``cfg.teacher`` or trained (same data and epochs)."""
    if Path(cfg.teacher).is_file():
        from mobilekit.layers import PASS_THROUGH_LAYERS

        try:
            teacher = keras.models.load_model(cfg.teacher, compile=False,
                                              custom_objects={c.__name__: c for c in PASS_THROUGH_LAYERS})
        except Exception as e:  # h5py / Keras raise many types for a bad file
            raise MobilekitError(f"--teacher {cfg.teacher!r} is not a loadable Keras model "
                                 f"({type(e).__name__})") from None
        if tuple(teacher.input_shape[1:]) != tuple(ds.input_shape):
            raise MobilekitError(f"--teacher {cfg.teacher!r} takes {teacher.input_shape[1:]}; the data is "
                                 f"{tuple(ds.input_shape)}")
    else:
        accepted = inspect.signature(archs.builder(cfg.teacher)).parameters
        teacher = archs.create(cfg.teacher, input_shape=ds.input_shape, classes=len(ds.class_names),
                               **{k: v for k, v in TRAINING_ARCH_KWARGS.items() if k in accepted})
        if cfg.epochs > 0:
            _fit(teacher, ds.x_train, ds.y_train, cfg, cfg.epochs, cfg.lr, f"training the teacher {cfg.teacher}",
                 seed_offset=4)
    return teacher, _keras_accuracy(teacher, x_test, ds.y_test)


def _keras_accuracy(model, x_float, y) -> float:
    probs = model.predict(x_float, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(probs, axis=-1) == y))


def _versions() -> dict:
    import tensorflow_model_optimization as tfmot_pkg
    from importlib.metadata import version

    return {"mobilekit": version("mobilekit"), "tensorflow": tf.__version__,
            "tf_keras": keras.__version__, "tfmot": tfmot_pkg.__version__,
            "ai_edge_litert": version("ai-edge-litert"), "numpy": np.__version__,
            "python": platform.python_version()}


def _layer_of(tensor_name: str, layer_names: list[str]) -> str:
    """The Keras layer a .tflite weight tensor came from (longest name found in it)."""
    parts = tensor_name.replace(";", "/").split("/")
    found = [n for n in layer_names if n in parts or f"quant_{n}" in parts]
    return max(found, key=len) if found else tensor_name


def build(cfg: BuildConfig, console=None) -> dict:
    """Run the whole pipeline and write the artifacts; returns the report dict.

    Raises:
        MobilekitError: bad settings, data or output folder, or a conversion that
            left float tensors in the int8 file.
    """
    from mobilekit import data as data_mod
    from mobilekit.analysis import complexity
    from mobilekit.bench import evaluate_tflite, measure_latency
    from mobilekit.convert import convert_float, convert_int8
    from mobilekit.optimize import (KeepClusters, KeepSparsity, cluster, cluster_labels, fold_batch_norm, prune,
                                    quantize_aware, sparsity_masks, strip_clustering, strip_pruning)
    from mobilekit.optimize.distill import Distiller
    from mobilekit import progress  # its console may be redirected (progress.use_console)
    from mobilekit.tflite_file import TfliteFile

    console = console or progress.console
    out_dir = ensure_writable_dir(cfg.out_dir)
    if cfg.weights is not None:
        from mobilekit.pretrained import build_pretrained
        return build_pretrained(cfg, out_dir, console)
    stages = _Stages(console)
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()

    ds = stages.run("data", "Loading data", data_mod.load, cfg.data, cfg.input_size, 3, seed=cfg.seed,
                    **({"limit_train": cfg.limit_train, "limit_test": cfg.limit_test}
                       if cfg.data in (None, "fashion-mnist") else {}))
    console.print(f"   {ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test images, "
                  f"{len(ds.class_names)} classes, input {ds.input_shape}")
    x_test = data_mod.to_float(ds.x_test)
    arch_kwargs = _arch_kwargs(cfg)
    model = archs.create(cfg.arch, input_shape=ds.input_shape, classes=len(ds.class_names), **arch_kwargs)
    info = complexity(model)
    accuracy: dict = {"test_images": int(len(ds.y_test)), "dataset": ds.name}

    def train_float(student, teacher=None):
        if cfg.epochs > 0:
            trained = Distiller(student, teacher, cfg.distill_alpha, cfg.temperature) if teacher else student
            _fit(trained, ds.x_train, ds.y_train, cfg, cfg.epochs, cfg.lr,
                 "float training" + (" with the teacher" if teacher else ""))
        return _keras_accuracy(student, x_test, ds.y_test)

    teacher = None
    if cfg.teacher:
        teacher, accuracy["teacher"] = stages.run("teacher", f"Teacher {cfg.teacher}", _teacher, cfg, ds, x_test)
        # The same student, same initial weights, data order and epochs, without the teacher.
        alone = keras.models.clone_model(model)
        alone.set_weights(model.get_weights())
        accuracy["keras_float_without_teacher"] = stages.run(
            "train_float_alone", f"Training {cfg.arch} (float) without the teacher", train_float, alone)
    accuracy["keras_float"] = stages.run("train_float", f"Training {cfg.arch} (float)"
                                         + (" distilled from the teacher" if teacher else ""), train_float,
                                         model, teacher)
    spec = cfg.spec
    final = model
    masks: dict = {}
    if spec.prunes:
        def prune_stage():
            # Reach the target sparsity at 75% of the steps; the rest recovers accuracy.
            steps = _steps(cfg, len(ds.x_train), cfg.prune_epochs)
            pruned = prune(model, spec.sparsity or 0.5, end_step=max(1, int(steps * 0.75)), m_by_n=spec.m_by_n)
            what = f"{spec.m_by_n[0]}:{spec.m_by_n[1]}" if spec.m_by_n else f"{spec.sparsity:.0%}"
            _fit(pruned, ds.x_train, ds.y_train, cfg, cfg.prune_epochs, cfg.lr * 0.2,
                 f"pruning to {what}", [tfmot.sparsity.keras.UpdatePruningStep()], seed_offset=1)
            stripped = strip_pruning(pruned)
            return stripped, sparsity_masks(stripped), _keras_accuracy(stripped, x_test, ds.y_test)

        title = (f"Pruning ({spec.m_by_n[0]}:{spec.m_by_n[1]} structured, tfmot m-by-n)" if spec.m_by_n
                 else "Pruning (tfmot PolynomialDecay)")
        final, masks, accuracy["keras_pruned"] = stages.run("prune", title, prune_stage)
    labels: dict = {}
    if spec.clusters:
        def cluster_stage():
            base = final
            if spec.fold_batch_norm and any(type(layer).__name__ == "BatchNormalization" for layer in base.layers):
                base = fold_batch_norm(base, cfg.arch, arch_kwargs)
            wrapped = cluster(base, spec.clusters, preserve_sparsity=bool(masks))
            if cfg.cluster_epochs > 0:
                _fit(wrapped, ds.x_train, ds.y_train, cfg, cfg.cluster_epochs, cfg.lr * 0.05,
                     f"clustering to {spec.clusters} values", seed_offset=3)
            stripped = strip_clustering(wrapped)
            return stripped, sparsity_masks(stripped), cluster_labels(stripped), \
                _keras_accuracy(stripped, x_test, ds.y_test)

        final, masks, labels, accuracy["keras_clustered"] = stages.run(
            "cluster", f"Clustering weights (tfmot, {spec.clusters} clusters per kernel)", cluster_stage)
    float_model = final
    if spec.qat:
        def qat_stage():
            qat_model = quantize_aware(float_model, preserve_sparsity=bool(masks), preserve_clusters=bool(labels))
            keep = KeepClusters(labels) if labels else KeepSparsity(masks) if masks else None
            if cfg.qat_epochs > 0:
                _fit(qat_model, ds.x_train, ds.y_train, cfg, cfg.qat_epochs, cfg.lr * 0.05,
                     "quantization-aware training", [keep] if keep else [], seed_offset=2)
            return qat_model, _keras_accuracy(qat_model, x_test, ds.y_test)

        scheme = ("PCQAT" if labels and masks else "CQAT" if labels else "PQAT" if masks else "QAT")
        final, accuracy["keras_qat"] = stages.run("qat", f"Quantization-aware training ({scheme})", qat_stage)

    rng = np.random.default_rng(cfg.seed)
    calib_idx = np.sort(rng.choice(len(ds.x_train), min(cfg.calibration_samples, len(ds.x_train)),
                                   replace=False))
    calibration = data_mod.to_float(ds.x_train[calib_idx])

    def convert_stage():
        return convert_float(float_model), convert_int8(final, calibration,
                                                        per_tensor_weights=spec.per_tensor_weights)

    float_bytes, int8_bytes = stages.run("convert", "Converting to int8 .tflite (batch 1)", convert_stage)
    tfl = TfliteFile(int8_bytes)
    layer_names = [layer.name for layer in model.layers]
    per_layer = {}
    for tensor_name, s in tfl.weight_sparsity().items():
        per_layer[_layer_of(tensor_name, layer_names)] = s
    survival = survived(per_layer, masks, labels)
    pruned_layers = {k: v for k, v in per_layer.items() if v["op"] != "DEPTHWISE_CONV_2D"}
    total = sum(v["params"] for v in pruned_layers.values())
    zeros = sum(v["zeros"] for v in pruned_layers.values())

    result = stages.run("evaluate_int8", f"Evaluating the int8 file on {len(ds.y_test)} test images",
                        evaluate_tflite, int8_bytes, x_test, ds.y_test)
    accuracy["tflite_int8"] = result["top1"]
    latency = stages.run("latency", "Measuring batch-1 latency (LiteRT, 1 thread)", measure_latency,
                         int8_bytes, num_runs=cfg.latency_runs, warmup_runs=cfg.latency_warmup,
                         num_threads=1)
    arm = arm_stage(stages, cfg, int8_bytes)

    report = {
        "arch": cfg.arch,
        "metaparameters": {**_arch_defaults(cfg.arch), **arch_kwargs},
        "input_shape": list(ds.input_shape),
        "classes": list(ds.class_names),
        "num_classes": len(ds.class_names),
        "params": info["params"],
        "macs": info["macs"],
        "preprocessing": ds.preprocessing(),
        **file_fields(tfl, float_bytes, int8_bytes),
        "recipe": spec.to_json(),
        "sparsity": {"target": cfg.sparsity, "int8_weights": zeros / total if total else 0.0,
                     "scope": "CONV_2D and FULLY_CONNECTED weights (tfmot never prunes depthwise)",
                     "per_layer": per_layer},
        "survival": survival,
        "accuracy": accuracy,
        "latency": latency,
        **arm,
        "seed": cfg.seed,
        "config": {k: v for k, v in asdict(cfg).items()},
        "versions": _versions(),
        "stage_seconds": stages.seconds,
    }
    write_artifacts(out_dir, report, int8_bytes, ds.class_names)
    return report


def survived(per_layer: dict, masks: dict, labels: dict) -> dict:
    """What the Keras model held (zeros, cluster values) against what the .tflite stores, per layer.

    Adds ``keras_zeros`` / ``keras_values`` to each ``per_layer`` entry and returns the layers
    that lost sparsity (fewer zeros in the file) or clusters, per tensor and per output channel.
    """
    lost_sparsity, lost_tensor, lost_channel = [], [], []
    for name, entry in per_layer.items():
        if name in masks:
            entry["keras_zeros"] = int(masks[name].size - np.count_nonzero(masks[name]))
            if entry["zeros"] < entry["keras_zeros"]:
                lost_sparsity.append(name)
        if name in labels:
            entry["keras_values"] = int(labels[name].max()) + 1 + int((labels[name] < 0).any())
            if entry["distinct_values"] > entry["keras_values"]:
                lost_tensor.append(name)
            if entry["max_distinct_per_channel"] > entry["keras_values"]:
                lost_channel.append(name)
    return {"lost_sparsity": lost_sparsity, "clusters_lost_per_tensor": lost_tensor,
            "clusters_lost_per_channel": lost_channel,
            "note": "per tensor needs per-tensor weight scales; QAT'd files keep tfmot's per-channel scales "
                    "(docs/compression-recipes.md)"}


def arm_stage(stages: _Stages, cfg: BuildConfig, int8_bytes: bytes) -> dict:
    """``{"arm": ...}`` with emulated counts and latency predictions for ``cfg.devices`` ({} without)."""
    if not cfg.devices:
        return {}
    from mobilekit.bench.devices import arm_section

    return {"arm": stages.run("arm", f"Predicting latency on {', '.join(cfg.devices)} (emulated ARM counts)",
                              arm_section, int8_bytes, device_names=cfg.devices)}


def file_fields(tfl, float_bytes: bytes, int8_bytes: bytes) -> dict:
    """report.json fields read from the converted files: I/O quantization, sizes, ops, sha256.

    ``sizes.bits_per_param`` is the transmitted cost: 8 x gzip'd .tflite bytes (the whole file)
    per conv / fully-connected weight and bias stored in it.
    """
    def io(t):
        return {"dtype": t.dtype.lower(), "shape": list(t.shape), "scale": float(t.scale[0]),
                "zero_point": int(t.zero_point[0])}

    gzip_bytes = len(gzip.compress(int8_bytes, 9, mtime=0))
    params = tfl.weight_params()
    return {"quantization": {"input": io(tfl.inputs[0]), "output": io(tfl.outputs[0])},
            "sizes": {"float_tflite_bytes": len(float_bytes), "int8_tflite_bytes": len(int8_bytes),
                      "int8_gzip_bytes": gzip_bytes, "weight_params": params,
                      "bits_per_param": 8 * gzip_bytes / params if params else None},
            "ops": tfl.op_counts(), "sha256": hashlib.sha256(int8_bytes).hexdigest()}


def write_artifacts(out_dir: Path, report: dict, int8_bytes: bytes, class_names) -> None:
    """``<arch>.tflite``, labels.txt, report.md and report.json, each written atomically."""
    from mobilekit.report import to_markdown

    t0 = time.perf_counter()
    name = report["arch"]
    report["files"] = {"tflite": f"{name}.tflite", "labels": "labels.txt",
                       "report_json": "report.json", "report_md": "report.md"}
    write_bytes_atomic(out_dir / f"{name}.tflite", int8_bytes)
    write_text_atomic(out_dir / "labels.txt", "".join(f"{c}\n" for c in class_names))
    report["stage_seconds"]["write"] = round(time.perf_counter() - t0, 2)
    report["stage_seconds"]["total"] = round(sum(report["stage_seconds"].values()), 2)
    write_text_atomic(out_dir / "report.md", to_markdown(report))
    write_json_atomic(out_dir / "report.json", report)


def _arch_defaults(arch: str) -> dict:
    params = inspect.signature(archs.builder(arch)).parameters
    skip = {"input_shape", "classes", "batch_size"}
    return {k: p.default for k, p in params.items() if k not in skip}


def _arch_kwargs(cfg: BuildConfig) -> dict:
    return arch_kwargs(cfg.arch, cfg.arch_kwargs)


def arch_kwargs(arch: str, user_kwargs: dict | None) -> dict:
    """The builder keywords of a build: the training defaults the arch accepts, then the user's."""
    archs.check_kwargs(arch, user_kwargs or {})
    accepted = inspect.signature(archs.builder(arch)).parameters
    kwargs = {k: v for k, v in TRAINING_ARCH_KWARGS.items() if k in accepted}
    return {**kwargs, **(user_kwargs or {})}
