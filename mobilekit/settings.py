"""Settings declared once: a field's type, bounds, default, mode defaults, help, group and roles.

A leaf module (no TensorFlow, nothing of mobilekit but errors and the number syntax). A settings class
(``mobilekit.BuildConfig``) declares each field with :func:`setting`; everything that takes a value of that
field reads it from here: the Python API's check (:meth:`Setting.check`), the command line's flags and their
help (``mobilekit.cli.flags``), explore's knobs, spec-file values and point ids (``mobilekit.explore.space``),
and the ``config`` a report records. One rule, one message, on every surface.

Example::

    @dataclass(frozen=True)
    class Config:
        lr: float = setting(3e-3, low=0, low_open=True, high=10, help="peak learning rate")

    fields_of(Config)["lr"].check(20.0)  # MobilekitError: lr must be a number in (0, 10]; received lr=20.0
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mobilekit._checks import plain_number
from mobilekit.errors import MobilekitError

# The modes a build resolves its defaults in: from scratch, a pretrained backbone on the user's data (transfer),
# and a pretrained model with its own head and no data (as is: nothing trained).
MODES = ("scratch", "transfer", "as_is")
MODE_WORDS = {"scratch": "", "transfer": "with --weights and data", "as_is": "with --weights and no data"}
_UNSET = object()
_PAIR = re.compile(r"([0-9]+)\s*[xX]\s*([0-9]+)")


@dataclass(frozen=True)
class Setting:
    """One field of a settings class and every rule about it.

    ``kind`` is int, float, bool, str, tuple (a list of names) or dict; ``None`` is a value when the default is
    None (``optional``). ``modes`` maps a mode to its default when the user leaves the field unset; ``fallback``
    names where an unset value comes from otherwise ("the recipe's"). ``training``: it only steers training (a
    build with nothing to train refuses it set). ``sweep``: explore may vary it. ``flag``: the command-line flag
    (None: no flag of its own). ``id_default``: fields newer than the sweeps on disk are left out of a point's id
    at this value, so those points keep their ids.
    """

    name: str = ""
    kind: type = str
    default: object = None
    help: str | Callable = ""  # a callable when the text needs an import (the recipes' summaries)
    group: str = "model and data"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    modes: dict = field(default_factory=dict)
    fallback: str | None = None
    training: bool = False
    sweep: bool = False
    flag: str | None = ""
    metavar: str | None = None
    id_default: object = _UNSET
    none_word: bool | None = None  # the text "none" means unset (None: for optional fields that are not text)
    validate: Callable | None = None  # value -> canonical value, or MobilekitError naming it
    parse: Callable | None = None  # command-line text -> value (default: by kind)
    pair: bool = False  # an int kind that also takes a height and a width: "HxW" or [h, w] (an image's size)
    explore: bool = True  # explore's base may set it (False: where one build's own training runs, e.g. --workers)

    @property
    def optional(self) -> bool:
        return self.default is None

    @property
    def cli_flag(self) -> str | None:
        if self.flag is None:
            return None
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def in_point_id(self) -> bool:
        return self.id_default is _UNSET

    def bounds(self) -> str:
        low = "(" if self.low_open else "["
        high = ")" if self.high_open else "]"
        return f"{low}{_number_text(self.low)}, {_number_text(self.high)}{high}"

    def check(self, value):
        """``value`` canonical for this field, or MobilekitError naming the field and the value (one line)."""
        if value is None and self.optional:
            return None
        if self.pair and isinstance(value, (list, tuple)):
            value = self._check_pair(value)
        elif self.kind in (int, float):
            value = self._check_number(value)
        elif self.kind is bool:
            if not isinstance(value, bool):
                raise self.error(value, "must be true or false")
        elif self.kind is str:
            if not isinstance(value, str):
                raise self.error(value, "must be text")
        elif self.kind is tuple:
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise self.error(value, "must be a list of names")
            value = tuple(value)
        elif self.kind is dict and not isinstance(value, dict):
            raise self.error(value, "must be a mapping")
        if self.choices is not None and value not in self.choices:
            raise self.error(value, f"must be one of {', '.join(map(str, self.choices))}")
        return self.validate(value) if self.validate else value

    def _number_rule(self) -> str:
        rule = f"must be {'an int' if self.kind is int else 'a number'}"
        rule += f" in {self.bounds()}" if self.high is not None else ""
        return rule + (", or HxW: a height and a width in that range" if self.pair else "")

    def _check_number(self, value, whole=_UNSET):
        """``value`` checked against the kind and the bounds; an error names ``whole`` (the pair it is part of)."""
        shown = value if whole is _UNSET else whole
        if (isinstance(value, bool) or not isinstance(value, (int, float) if self.kind is float else int)
                or not math.isfinite(value)):
            raise self.error(shown, self._number_rule())
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        if not (low_ok and high_ok):
            raise self.error(shown, self._number_rule())
        return float(value) if self.kind is float else value

    def _check_pair(self, value):
        """A (height, width) pair checked: the one int when both are equal (a square keeps its plain form, so its
        point ids and reports read as before), else the tuple."""
        if len(value) != 2:
            raise self.error(value, self._number_rule())
        h, w = (self._check_number(v, whole=value) for v in value)
        return h if h == w else (h, w)

    def error(self, value, rule: str) -> MobilekitError:
        return MobilekitError(f"{self.name} {rule}; received {self.name}={value!r}"[:300])

    def text_error(self, rule: str):
        """A rule of a text field (a folder name, say) as the one-line error of :meth:`check`."""
        def check(value):
            if not value.strip():
                raise self.error(value, rule)
            return value
        return check

    def from_text(self, text: str):
        """A value of this field written as text (a flag, ``--space``, a spec file's string), checked.

        "none" is the unset value of an optional field (unless ``validate`` gives the word a meaning).
        """
        if self.parse is not None:
            return self.check(self.parse(text))
        stripped = text.strip()
        if self.pair and (hw := _PAIR.fullmatch(stripped)):
            try:
                return self.check((int(hw[1]), int(hw[2])))
            except MobilekitError:
                raise self.error(text, self._number_rule()) from None  # named as written
        none_word = self.kind is not str if self.none_word is None else self.none_word
        if stripped.lower() == "none" and self.optional and none_word:
            return None
        try:
            if self.kind is bool:
                value = parse_bool(stripped)
            elif self.kind in (int, float):
                value = plain_number(stripped, self.kind)  # ASCII decimals only: not "1_0", not full-width digits
            elif self.kind is tuple:
                value = tuple(t.strip() for t in stripped.split(",") if t.strip())
            else:
                value = text
        except (ValueError, MobilekitError):
            raise self.error(text, f"takes {_kind_text(self.kind)}{' or HxW' if self.pair else ''} values") from None
        return self.check(value)

    def from_json(self, value):
        """A value of this field as JSON or YAML gives it (text is read as from the command line), checked."""
        if isinstance(value, str):
            return self.from_text(value)
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind is tuple and isinstance(value, list):
            value = tuple(value)
        return self.check(value)

    def help_text(self) -> str:
        return self.help() if callable(self.help) else self.help

    def default_text(self) -> str:
        """What the help says an unset field becomes: the default, the mode defaults, the fallback."""
        parts = []
        if self.fallback:
            parts.append(self.fallback)
        elif self.default is not None and self.default != () and self.kind is not bool:
            parts.append(_number_text(self.default))
        shown = {m: v for m, v in self.modes.items() if v is not None and not (m == "as_is" and self.training)}
        if "transfer" in shown and shown["transfer"] == shown.get("as_is", _UNSET):  # any pretrained weights
            shown = {**{m: v for m, v in shown.items() if m == "scratch"}, "pretrained": shown["transfer"]}
        words = {**MODE_WORDS, "pretrained": "with --weights"}
        parts += [f"{_number_text(value)} {words[mode]}".strip() for mode, value in shown.items()]
        return "; ".join(dict.fromkeys(parts))


def setting(default=None, **rules):
    """A dataclass field whose rules travel in its metadata (see :class:`Setting`; the name and kind are filled in
    by :func:`fields_of` from the class)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("a mutable default: give a tuple")
    return field(default=default, metadata={"setting": Setting(default=default, **rules)})


def fields_of(cls) -> dict[str, Setting]:
    """The settings of ``cls`` by name, in declaration order, their names and kinds taken from the class."""
    cached = cls.__dict__.get("_settings_cache")
    if cached is not None:
        return cached
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    out = {}
    for f in dataclasses.fields(cls):
        s = f.metadata.get("setting")
        if s is None:
            continue
        out[f.name] = dataclasses.replace(s, name=f.name, kind=_kind_of(hints[f.name]))
    type.__setattr__(cls, "_settings_cache", out)
    return out


def _kind_of(hint) -> type:
    text = str(hint).replace(" ", "")
    for kind in (bool, int, float, str, tuple, dict):
        if text.split("|")[0].startswith(kind.__name__):
            return kind
    raise TypeError(f"no setting kind for the annotation {hint!r}")


def to_record(obj) -> dict:
    """The JSON-ready record of a settings object (tuples as lists), every field in declaration order: what a
    report's ``config`` and a design point's config hold."""
    return {f.name: (list(v) if isinstance(v := getattr(obj, f.name), tuple) else v) for f in dataclasses.fields(obj)}


def size_hw(size) -> tuple[int, int]:
    """(height, width) of an image size as a ``pair`` setting holds it: one side, or a (height, width) pair."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def size_text(size) -> str:
    """An image size as the command line writes it: "128x128", "96x128"."""
    h, w = size_hw(size)
    return f"{h}x{w}"


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise MobilekitError(f"expected true or false; received {text!r}")


def _kind_text(kind) -> str:
    return {bool: "true/false", int: "int", float: "number", tuple: "comma-separated name"}.get(kind, "text")


def _number_text(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:g}" if abs(value) < 1e6 else f"{int(value):,}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)
