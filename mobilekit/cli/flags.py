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
    takers = {k: [a for a in archs.list_archs(task=None) if k in archs.knob_types(a)] for k in knobs}
    for name, kind in knobs.items():
        flag = f"--{name.replace('_', '-')}"
        group.add_argument(flag, type=knob_value(kind, flag), default=None, metavar=kind.__name__.upper(),
                           help=f"{name} of {', '.join(takers[name])} (default: the builder's)")
    group.description = ("the builders' metaparameters, passed when given; an arch refuses one it does not "
                         "take, naming those it does: " + ", ".join(f"--{k.replace('_', '-')}" for k in knobs))


def arch_kwargs_of(args) -> dict:
    return {k: getattr(args, k) for k in arch_knob_flags() if getattr(args, k, None) is not None}


def setting_type(s):
    """An argparse type for a declared setting (mobilekit.settings): the same parse and check as the Python API and
    explore, so every surface refuses a value with the same one-line message."""
    def parse(text):
        try:
            return s.from_text(text)
        except MobilekitError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = s.name
    return parse


def add_setting(group, s) -> None:
    """The flag of one declared setting, its help ending in the default the declaration gives."""
    default = s.default_text()
    help = s.help_text().replace("%", "%%") + (f" (default: {default})".replace("%", "%%") if default else "")
    if s.kind is bool:
        action = argparse.BooleanOptionalAction if s.default is None else "store_true"
        group.add_argument(s.cli_flag, dest=s.name, action=action, default=s.default, help=help)
        return
    metavar = s.metavar or ("{" + ",".join(s.choices) + "}" if s.choices else None)
    group.add_argument(s.cli_flag, dest=s.name, type=setting_type(s), default=s.default, metavar=metavar, help=help)


def rewrite_list(text: str) -> tuple[str, ...]:
    """``--rewrites``: comma-separated names of mobilekit.rewrites.REWRITES, or "none"."""
    from mobilekit.pipeline.config import SETTINGS

    return setting_type(SETTINGS["rewrites"])(text)


BUILD_GROUPS = ("model and data", "training and compression", "precision", "output", "data-parallel training (Ray Train)")


def add_build_flags(b, skip: tuple[str, ...] = ()) -> None:
    """The flags of one build, generated from BuildConfig's declarations (one group each), shared by `build` and
    `explore` (``skip``: the settings a command names its own way)."""
    from mobilekit.pipeline.config import SETTINGS

    for title in BUILD_GROUPS:
        group = b.add_argument_group(title)
        for s in SETTINGS.values():
            if s.group == title and s.cli_flag and s.name not in skip:
                add_setting(group, s)
        if title == "model and data":
            group.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                               help="no BatchNormalization after convs (BN folds into the convs at conversion)")


def settings_of(args, skip: tuple[str, ...] = ()) -> dict:
    """BuildConfig's fields from the flags (arch knobs and --no-batch-norm as ``arch_kwargs``)."""
    from mobilekit.pipeline.config import SETTINGS

    options = {name: getattr(args, name) for name, s in SETTINGS.items() if s.cli_flag and name not in skip}
    options["arch_kwargs"] = {**arch_kwargs_of(args), **({} if args.batch_norm else {"batch_norm": False})} or None
    return options
