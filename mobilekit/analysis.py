"""Model complexity from a Keras model: parameters and multiply-accumulates.

A MAC is one multiply plus one add of a conv or dense layer; a grouped conv
counts per group, a depthwise conv per channel. Other layers count 0 MACs, as
in the papers' tables.
"""

from __future__ import annotations

import numpy as np


def _out_hw(layer) -> int:
    shape = layer.output_shape
    shape = shape[0] if isinstance(shape, list) else shape
    return int(np.prod(shape[1:-1])) if len(shape) > 2 else 1


def layer_macs(layer) -> int:
    """MACs of one Keras layer at its built output shape (batch 1)."""
    kind = type(layer).__name__
    if kind == "DepthwiseConv2D":
        kh, kw, cin, mult = layer.depthwise_kernel.shape
        return _out_hw(layer) * kh * kw * cin * mult
    if kind == "SeparableConv2D":
        kh, kw, cin, mult = layer.depthwise_kernel.shape
        cout = layer.pointwise_kernel.shape[-1]
        return _out_hw(layer) * (kh * kw * cin * mult + cin * mult * cout)
    if kind == "Conv2D":
        kh, kw, cin_per_group, cout = layer.kernel.shape
        return _out_hw(layer) * kh * kw * cin_per_group * cout
    if kind == "Dense":
        cin, cout = layer.kernel.shape
        return _out_hw(layer) * cin * cout
    return 0


def complexity(model) -> dict:
    """{"params", "trainable_params", "macs", "layers": [...]} of a Keras model.

    Example: ``complexity(mobilekit.create("squeezenet1_1"))["macs"]``.
    """
    layers = []
    for layer in model.layers:
        shape = layer.output_shape
        shape = shape[0] if isinstance(shape, list) else shape
        layers.append({"name": layer.name, "type": type(layer).__name__,
                       "output_shape": [d for d in shape[1:]],
                       "params": int(layer.count_params()), "macs": int(layer_macs(layer))})
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {"params": int(model.count_params()), "trainable_params": trainable,
            "macs": int(sum(l["macs"] for l in layers)), "layers": layers}
