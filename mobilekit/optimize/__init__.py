"""Compression: magnitude pruning and quantization-aware training (tfmot)."""

from mobilekit.optimize.prune import prune, strip_pruning, sparsity_masks, validate_sparsity
from mobilekit.optimize.qat import KeepSparsity, quantize_aware

__all__ = ["prune", "strip_pruning", "sparsity_masks", "validate_sparsity", "quantize_aware",
           "KeepSparsity"]
