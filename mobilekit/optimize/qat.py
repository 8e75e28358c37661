"""Quantization-aware training (tfmot default 8-bit scheme), keeping pruned zeros."""

from __future__ import annotations

import numpy as np

from mobilekit._tf import keras, tfmot


def quantize_aware(model, *, preserve_sparsity: bool = True):
    """Wrap ``model`` for 8-bit QAT; ``preserve_sparsity`` uses tfmot's PQAT scheme.

    Example: ``qat = quantize_aware(strip_pruning(pruned))``.
    """
    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    if preserve_sparsity:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)
    return tfmot.quantization.keras.quantize_apply(annotated)


def _inner(layer):
    return getattr(layer, "layer", layer)


class KeepSparsity(keras.callbacks.Callback):
    """Re-applies pruning masks to the kernels after every training batch.

    tfmot's prune-preserving QAT scheme does not cover every layer: a conv whose
    quantize config was rewritten by a pattern transform (SqueezeNet's expand
    convs feeding Concatenate) gets plain QAT, and its zeros fill back in. The
    masks recorded from the stripped pruned model are re-imposed here, which
    keeps the exact zero pattern for every pruned layer whatever the scheme did.
    """

    def __init__(self, masks: dict[str, np.ndarray]):
        super().__init__()
        self.masks = masks
        self._pairs = None

    def _collect(self):
        pairs = []
        for layer in self.model.layers:
            inner = _inner(layer)
            mask = self.masks.get(inner.name)
            if mask is not None:
                # The QuantizeWrapper swaps ``inner.kernel`` for its fake-quantized
                # tensor; the variable itself is among the wrapper's weights.
                kernels = [w for w in layer.trainable_weights
                           if w.name.split("/")[-1].startswith("kernel") and tuple(w.shape) == mask.shape]
                if len(kernels) != 1:
                    raise RuntimeError(f"KeepSparsity: no unique kernel variable in {inner.name!r}")
                pairs.append((kernels[0], mask.astype(np.float32)))
        if len(pairs) != len(self.masks):
            found = {_inner(layer).name for layer in self.model.layers}
            missing = sorted(set(self.masks) - found)
            raise RuntimeError(f"KeepSparsity: masked layers not found in the model: {missing}")
        return pairs

    def apply(self):
        if self._pairs is None:
            self._pairs = self._collect()
        for kernel, mask in self._pairs:
            kernel.assign(kernel * mask)

    def on_train_batch_end(self, batch, logs=None):
        self.apply()
