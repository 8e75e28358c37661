"""Range checks shared by the API and the CLI (no TensorFlow import here)."""

from __future__ import annotations

import math
import re

from mobilekit.errors import MobilekitError


_PLAIN = {int: re.compile(r"[+-]?[0-9]+"), float: re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")}


def plain_number(text: str, kind=float):
    """``text`` as ``kind`` when it is a plain ASCII decimal ("0.5", "-3", "1e-4"); Python's own int() and
    float() also take "1_0" and full-width digits, which no user means as numbers here.

    Raises:
        ValueError: anything else (inf and nan included).
    """
    text = text.strip()
    if not _PLAIN[kind].fullmatch(text):
        raise ValueError(text)
    return kind(text)


def validate_sparsity(sparsity) -> float:
    """``sparsity`` as a float in [0, 1), or MobilekitError naming the value."""
    if (isinstance(sparsity, bool) or not isinstance(sparsity, (int, float))
            or not math.isfinite(sparsity) or not 0.0 <= sparsity < 1.0):
        raise MobilekitError(f"sparsity must be in [0, 1); received sparsity={sparsity!r}")
    return float(sparsity)


# Upper bounds of every numeric setting, checked before any work (CLI flags and BuildConfig alike): past
# them a value is a typo or an attack (a 20,000-pixel input asks for 75 GiB; 100,000 threads exhaust the
# machine's processes), not a setting a phone model needs.
LIMITS = {
    "input_size": 1024, "epochs": 1000, "seed": 2**31 - 1, "batch_size": 65536, "num_threads": 64,
    "runs": 1_000_000, "calibration_samples": 100_000, "limit": 100_000_000, "classes": 100_000,
    "seconds": 86_400, "workers": 1024,
}


def check_number(name: str, value, kind=int, low=None, high=None, low_open=False) -> None:
    """``value`` is a finite ``kind`` in [low, high] (``low`` excluded when ``low_open``), or
    MobilekitError naming ``name`` and the value."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
          and math.isfinite(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        what = "an int" if kind is int else "a number"
        bounds = (f" in ({low}, {high}]" if low_open else f" in [{low}, {high:,}]") if high is not None else (
            f" > {low}" if low_open else f" >= {low}")
        raise MobilekitError(f"{name} must be {what}{bounds}; received {name}={value!r}")
