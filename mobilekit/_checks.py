"""Range checks shared by the API and the CLI (no TensorFlow import here)."""

from __future__ import annotations

import math

from mobilekit.errors import MobilekitError


def validate_sparsity(sparsity) -> float:
    """``sparsity`` as a float in [0, 1), or MobilekitError naming the value."""
    if (isinstance(sparsity, bool) or not isinstance(sparsity, (int, float))
            or not math.isfinite(sparsity) or not 0.0 <= sparsity < 1.0):
        raise MobilekitError(f"sparsity must be in [0, 1); received sparsity={sparsity!r}")
    return float(sparsity)
