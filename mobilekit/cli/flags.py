"""The flags and argument types the commands share (numbers with bounds, thread/device lists, the
build's flags, the arch knobs derived from the builders' signatures). No TensorFlow import."""

from __future__ import annotations

import argparse
import math
import re

from mobilekit._checks import LIMITS, plain_number
from mobilekit.errors import MobilekitError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def number(kind, low=None, low_open=False, high=None, high_open=False, what="value"):
    def parse(text):
        try:
            value = plain_number(text, kind)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what}: {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"invalid {what}: {text!r}")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"{what} must be {'>' if low_open else '>='} {low}; received {text!r}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"{what} must be {'<' if high_open else '<='} {high}; received {text!r}")
        return value
    return parse


def thread_list(text):
    parts = text.split(",")
    high = LIMITS["num_threads"]
    if not all(re.fullmatch(r"[0-9]+", p.strip()) and 1 <= int(p) <= high for p in parts):
        raise argparse.ArgumentTypeError(f"thread counts must be ints in [1, {high}] such as 1 or 1,2; "
                                         f"received {text!r}")
    return list(dict.fromkeys(int(p) for p in parts))


def cpu_list(text):
    from mobilekit.emulate.root import check_cpu

    try:
        return list(dict.fromkeys(check_cpu(c.strip()) for c in text.split(",")))
    except MobilekitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def device_list(text):
    from mobilekit.bench.devices import device

    try:
        return list(dict.fromkeys(device(d.strip()).name for d in text.split(",")))
    except MobilekitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_device_flag(parser, what: str) -> None:
    parser.add_argument("--device", type=device_list, default=[], metavar="NAME[,NAME...]",
                        help=f"predict {what} batch-1 latency on these phones from instruction counts on an "
                             "emulated ARM core (needs `mobilekit emulate setup`); see `mobilekit emulate devices`")


def add_positive(group, flag: str, help: str) -> None:
    """An optional positive number (a target or budget), None when not given."""
    group.add_argument(flag, type=number(float, 0, low_open=True, what=flag), default=None, help=help)


def boolean(text):
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; received {text!r}")


# Flags for the builders' design metaparameters (mobilekit.archs.knob_types), shared by `build`, `info`
# and `explore`: only the ones given reach the builder, which rejects those it does not take. BN and the
# classifier's ReLU are the build's training choices (--no-batch-norm), not flags of their own.
TRAINING_KNOBS = ("batch_norm", "classifier_relu")


def arch_knob_flags() -> dict[str, type]:
    from mobilekit import archs

    return {k: v for k, v in archs.knob_types().items() if k not in TRAINING_KNOBS}


def knob_value(kind, flag: str):
    if kind is bool:
        return boolean
    if kind is str:
        return lambda text: None if text.lower() == "none" else text
    return number(kind, what=flag)


def add_arch_knobs(group) -> None:
    from mobilekit import archs

    knobs = arch_knob_flags()
    takers = {k: [a for a in archs.list_archs() if k in archs.knob_types(a)] for k in knobs}
    for name, kind in knobs.items():
        flag = f"--{name.replace('_', '-')}"
        group.add_argument(flag, type=knob_value(kind, flag), default=None, metavar=kind.__name__.upper(),
                           help=f"{name} of {', '.join(takers[name])} (default: the builder's)")
    group.description = ("the builders' metaparameters, passed when given; an arch refuses one it does not "
                         "take, naming those it does: " + ", ".join(f"--{k.replace('_', '-')}" for k in knobs))


def arch_kwargs_of(args) -> dict:
    return {k: getattr(args, k) for k in arch_knob_flags() if getattr(args, k, None) is not None}


def rewrite_list(text: str) -> tuple[str, ...]:
    """``--rewrites``: comma-separated names of mobilekit.rewrites.REWRITES, or "none"."""
    from mobilekit.rewrites import check_names

    if text.strip().lower() == "none":
        return ()
    try:
        return check_names(t.strip() for t in text.split(",") if t.strip())
    except MobilekitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def recipe_name(text: str) -> str:
    from mobilekit.recipes import Recipe

    try:
        Recipe.preset(text)
    except MobilekitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_build_flags(b, d: dict) -> None:
    """The flags of one build (model, data, training, compression), shared by `build` and `explore`."""
    from mobilekit.recipes import PRESETS

    add_model_and_data_flags(b)
    t = b.add_argument_group("training and compression")
    t.add_argument("--epochs", type=number(float, 0, high=LIMITS["epochs"], what="--epochs"), default=None,
                   help="float training epochs, fractions allowed (default: 1.5); with --weights and data: the "
                        "fine-tuning phase's epochs (default: 5)")
    add_transfer_flags(t)
    t.add_argument("--prune-epochs", type=number(float, 0, high=LIMITS["epochs"], what="--prune-epochs"), default=None,
                   help="pruning fine-tune epochs (default: the recipe's, else 0.5)")
    t.add_argument("--min-stage-steps", type=number(int, 0, high=LIMITS["runs"], what="--min-stage-steps"),
                   default=None, metavar="N",
                   help="fewest optimizer steps of each compression stage whatever the data's size, more passes "
                        "when its epochs are fewer steps (default: pruning 100, clustering and QAT 50; 0: exactly "
                        "the epochs asked)")
    t.add_argument("--qat-epochs", type=number(float, 0, high=LIMITS["epochs"], what="--qat-epochs"), default=None,
                   help="quantization-aware training epochs (default: the recipe's, else 0.25)")
    t.add_argument("--recipe", type=recipe_name, default=d["recipe"], metavar="NAME|FILE.json",
                   help="compression recipe, a preset or a recipe .json file (the format of "
                        "mobilekit/recipes/presets/*.json): "
                        + "; ".join(f"{r.name}: {r.summary}" for r in PRESETS.values()).replace("%", "%%")
                        + " (default: %(default)s)")
    t.add_argument("--sparsity", type=number(float, 0, high=1, high_open=True, what="sparsity"),
                   default=None, help="override the recipe's magnitude-pruning target in [0, 1); 0 skips pruning")
    t.add_argument("--clusters", type=number(int, 2, high=256, what="clusters"), default=None,
                   help="override the recipe's weight clusters per kernel (tfmot clustering)")
    t.add_argument("--cluster-epochs", type=number(float, 0, high=LIMITS["epochs"], what="--cluster-epochs"), default=None,
                   help="clustering fine-tune epochs (default: the recipe's, else 0.5)")
    t.add_argument("--qat", dest="qat", action=argparse.BooleanOptionalAction, default=None,
                   help="override the recipe: quantization-aware training, or post-training quantization")
    t.add_argument("--calibration", choices=("minmax", "percentile", "mse"), default=None,
                   help="post-training activation ranges (with --no-qat, int8-ptq or --weights): the converter's "
                        "min-max, the 99.99th percentile, or the range minimising the quantisation error "
                        "(default: the recipe's, minmax)")
    t.add_argument("--bias-correction", dest="bias_correction", action=argparse.BooleanOptionalAction,
                   default=None, help="post-training: fold the expected output shift of each layer's weight "
                                      "rounding into its bias (default: the recipe's, off)")
    t.add_argument("--rewrites", type=rewrite_list, default=None, metavar="NAMES",
                   help="export-time graph rewrites, comma-separated, or none: pad-fold, pad-grow, "
                        "normalization-fold, space-to-depth-stem; exact, the trained model unchanged (default: "
                        "the recipe's, pad-fold; with QAT only pad-fold)")
    t.add_argument("--teacher", default=None, metavar="PATH|ARCH|ARCH:imagenet",
                   help="distill the float training from a teacher: a Keras model file, a registered arch "
                        "trained first on the same data and epochs, or a pretrained backbone such as "
                        "mobilenet_v2:imagenet fine-tuned first on the same data (--head-epochs, --fine-tune); "
                        "the report also gives the student's accuracy without the teacher (same data, epochs "
                        "and initial weights)")
    t.add_argument("--trust-teacher", action="store_true",
                   help="load a --teacher file even if its layers carry Python code (Lambda), which runs while "
                        "loading; only for a file you made (default: such files are refused)")
    t.add_argument("--distill-alpha", type=number(float, 0, high=1, what="--distill-alpha"),
                   default=d["distill_alpha"], help="weight of the hard labels; 1 - alpha on the teacher's "
                   "softened outputs (default: %(default)s)")
    t.add_argument("--temperature", type=number(float, 0, low_open=True, high=100, what="--temperature"),
                   default=d["temperature"], help="softmax temperature of the soft targets (default: %(default)s)")
    t.add_argument("--batch-size", type=number(int, 1, high=LIMITS["batch_size"], what="--batch-size"),
                   default=None, help="training batch size (default: 128, or 32 with --weights; a dataset with "
                   "fewer than 10 steps per epoch gets a warning)")
    t.add_argument("--lr", type=number(float, 0, low_open=True, high=10, what="--lr"), default=d["lr"],
                   help="peak learning rate of the float stage, or of the new head with --weights (cosine decay; "
                        "default: %(default)s)")
    t.add_argument("--optimizer", choices=("adam", "sgd"), default=d["optimizer"],
                   help="Adam, or SGD with Nesterov momentum 0.9 (default: %(default)s)")
    t.add_argument("--augment", action="store_true",
                   help="random horizontal flips while training (off: no overfitting at the default budget)")
    t.add_argument("--seed", type=number(int, 0, high=LIMITS["seed"], what="--seed"), default=d["seed"],
                   help="seeds weights, data order, splits and calibration; same seed, same bytes (default: "
                        "%(default)s)")
    add_precision_flags(b)


def layer_list(text: str) -> tuple[str, ...]:
    """``--keep-float`` / ``--int16``: comma-separated layer names as `mobilekit numerics` prints them, globs allowed."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"name at least one layer; received {text!r}")
    return names


def add_precision_flags(b) -> None:
    """Mixed precision (mobilekit.precision): the whole model's, an accuracy budget, named layers."""
    from mobilekit.precision import DEFAULT_BUDGET_POINTS, MAX_BUDGET_POINTS, PRECISIONS

    p = b.add_argument_group("precision")
    p.add_argument("--precision", choices=PRECISIONS, default="int8",
                   help="int8: full int8 from the converter (the default gate); int16x8: int16 activations and "
                        "int8 weights everywhere; auto: the fewest layers lifted to float (in the order "
                        "`mobilekit numerics` ranks them) until the budget holds on held-out images "
                        "(ai-edge-quantizer; default: %(default)s)")
    p.add_argument("--max-agreement-drop", type=number(float, 0, high=MAX_BUDGET_POINTS, what="--max-agreement-drop"),
                   default=None, metavar="POINTS",
                   help=f"auto's budget: percentage points of top-1 agreement with the float model it may lose "
                        f"(default: {DEFAULT_BUDGET_POINTS:g})")
    p.add_argument("--min-output-sqnr", type=number(float, 0, high=150, what="--min-output-sqnr"), default=None,
                   metavar="DB", help="auto's budget as the output's SQNR against float, in dB, instead")
    p.add_argument("--keep-float", type=layer_list, default=(), metavar="LAYER,...",
                   help="layers computed in float (names as `mobilekit numerics` prints them; globs allowed)")
    p.add_argument("--int16", type=layer_list, default=(), metavar="LAYER,...",
                   help="layers given int16 activations (int8 weights); globs allowed")


def add_model_and_data_flags(b) -> None:
    """The arch, the data (and its held-out folder), pretrained weights, the input size, the limits."""
    g = b.add_argument_group("model and data")
    g.add_argument("--arch", default="squeezenet", help="registered architecture (default: squeezenet "
                   "= squeezenet1_1); see `mobilekit archs`")
    g.add_argument("--data", default=None, metavar="DIR",
                   help="image folder with one sub-folder per class (default: Fashion-MNIST)")
    g.add_argument("--test-data", default=None, metavar="DIR",
                   help="a held-out image folder with the same class sub-folders as --data (default: 20%% of each "
                        "--data class); its accuracy gets a 95%% confidence interval, per-class accuracy and a "
                        "confusion matrix")
    g.add_argument("--weights", choices=("imagenet",), default=None,
                   help="start from pretrained ImageNet weights (mobilenet_v2: torchvision's; efficientnet_lite0: "
                        "TensorFlow's). With --data (or --data fashion-mnist): transfer learning, a new head trained "
                        "on the frozen backbone, then fine-tuning, then the recipe; without data: ImageNet's own "
                        "model, calibrated on scikit-image's photos, nothing trained")
    g.add_argument("--input-size", type=number(int, 1, high=LIMITS["input_size"], what="--input-size"), default=None,
                   help="model input height and width (default: 48, or 224 with --weights)")
    g.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                   help="no BatchNormalization after convs (BN folds into the convs at conversion)")
    g.add_argument("--limit-train", type=number(int, 1, high=LIMITS["limit"], what="--limit-train"), default=None, metavar="N",
                   help="use N training images (Fashion-MNIST: the first N; --data: a seeded choice) for quick runs")
    g.add_argument("--limit-test", type=number(int, 1, high=LIMITS["limit"], what="--limit-test"), default=None, metavar="N",
                   help="use N test images (Fashion-MNIST: the first N; --data: a seeded choice) for quick runs")


def add_transfer_flags(t) -> None:
    """Transfer learning's phases (with --weights and data)."""
    t.add_argument("--head-epochs", type=number(float, 0, high=LIMITS["epochs"], what="--head-epochs"), default=None,
                   help="with --weights and data: epochs of the new head on the frozen backbone (default: 5)")
    t.add_argument("--fine-tune", default=None, metavar="all|none|block_N|FRACTION",
                   help="with --weights and data: what of the backbone the second phase trains: all, none (head "
                        "only), block_N and every layer after it, or a fraction of its layers from the top, e.g. "
                        "0.3; BatchNormalization stays frozen (default: all)")
    t.add_argument("--fine-tune-lr", type=number(float, 0, low_open=True, high=10, what="--fine-tune-lr"),
                   default=None, help="with --weights and data: peak learning rate of fine-tuning and of the "
                                      "compression stages after it (default: 1e-4; the head uses --lr)")
    t.add_argument("--label-smoothing", type=number(float, 0, high=0.5, what="--label-smoothing"), default=None,
                   help="label smoothing of the training loss in [0, 0.5] (default: 0.1 with --weights, else 0)")


def training_options(args) -> dict:
    """BuildConfig's training fields (pipeline.config.TRAINING_FIELDS, one list; pretrained builds reject
    non-defaults) and post-training quantisation options from the flags."""
    from mobilekit.pipeline.config import TRAINING_FIELDS

    options = {name: getattr(args, name) for name in TRAINING_FIELDS if name != "arch_kwargs"}
    options.update(calibration=args.calibration, bias_correction=args.bias_correction, rewrites=args.rewrites,
                   precision=args.precision, max_agreement_drop=args.max_agreement_drop,
                   min_output_sqnr=args.min_output_sqnr, keep_float=args.keep_float, int16=args.int16)
    options["arch_kwargs"] = {**arch_kwargs_of(args), **({} if args.batch_norm else {"batch_norm": False})} or None
    return options
