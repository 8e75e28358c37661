"""Model complexity from a Keras model: parameters and multiply-accumulates.

A MAC is one multiply plus one add of a conv or dense layer; a grouped conv
counts per group, a depthwise conv per channel. Other layers (and frozen
depthwise convs standing in for poolings) count 0 MACs, as in the papers' tables.
"""

from __future__ import annotations

import numpy as np


def _output_shape(layer) -> tuple:
    """The layer's output shape without the batch dimension (first output if several)."""
    shape = layer.output_shape
    return tuple((shape[0] if isinstance(shape, list) else shape)[1:])


def _output_elements(layer) -> int:
    """Elements of all the layer's outputs at batch 1 (ChannelSplit has several)."""
    shapes = layer.output_shape if isinstance(layer.output_shape, list) else [layer.output_shape]
    return sum(int(np.prod(shape[1:])) for shape in shapes)


def _out_hw(layer) -> int:
    shape = _output_shape(layer)
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


def layer_macs(layer) -> int:
    """MACs of one Keras layer at its built output shape (batch 1)."""
    kind = type(layer).__name__
    if kind == "DepthwiseConv2D" and not layer.trainable:
        return 0  # a frozen depthwise conv stands in for a pooling (ShuffleNet v1's avgpool)
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
        layers.append({"name": layer.name, "type": type(layer).__name__,
                       "output_shape": list(_output_shape(layer)),
                       "params": int(layer.count_params()), "macs": int(layer_macs(layer))})
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {"params": int(model.count_params()), "trainable_params": trainable,
            "macs": int(sum(l["macs"] for l in layers)), "layers": layers}


def _kernel_and_channels(layer) -> tuple[int, int] | None:
    kind = type(layer).__name__
    if kind == "DepthwiseConv2D":
        k = layer.depthwise_kernel.shape
        return int(np.prod(k)), int(k[2] * k[3])
    if kind in ("Conv2D", "Dense"):
        k = layer.kernel.shape
        return int(np.prod(k)), int(k[-1])
    return None


def weight_bytes(model) -> dict:
    """Weight bytes after BatchNormalization folds into its conv: float32 and int8.

    Every conv/dense keeps its kernel and gains one bias per output channel
    (float32, or int32 next to int8 kernels, as TFLite stores them).
    """
    float_bytes = int8_bytes = 0
    for layer in model.layers:
        kc = _kernel_and_channels(layer)
        if kc:
            kernel, channels = kc
            float_bytes += 4 * (kernel + channels)
            int8_bytes += kernel + 4 * channels
    return {"float32": float_bytes, "int8": int8_bytes}


def _inbound(layer) -> list:
    node = layer._inbound_nodes[0]
    inbound = node.inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def peak_activation_elements(model) -> int:
    """Largest sum of live activation tensors at batch 1, executing layers in order.

    A layer's output lives from the step that produces it to the last step that
    reads it (model outputs to the end); the model input counts as an activation.
    This is the Keras-graph view: TFLite may fuse activations into convs and
    reuse buffers in place, so its arena can be smaller.
    """
    layers = model.layers
    index = {id(layer): i for i, layer in enumerate(layers)}
    size = [_output_elements(layer) for layer in layers]
    last_use = list(range(len(layers)))
    for i, layer in enumerate(layers):
        if type(layer).__name__ == "InputLayer":
            continue
        for src in _inbound(layer):
            last_use[index[id(src)]] = max(last_use[index[id(src)]], i)
    for out in model.outputs:
        last_use[index[id(out._keras_history.layer)]] = len(layers)
    peak = 0
    for i in range(len(layers)):
        live = sum(size[j] for j in range(i + 1) if last_use[j] >= i)
        peak = max(peak, live)
    return peak


def info(arch: str, input_size: int = 224, classes: int = 1000, arch_kwargs: dict | None = None,
         devices=(), return_model: bool = False):
    """`mobilekit info` as a function: params, MACs, weight bytes, peak activations and the per-layer
    table of the untrained ``arch`` (and, with ``devices``, emulated ARM counts and predicted latency of
    its untrained float and int8 files). With ``return_model``: (that dict, the Keras model).

    Example: ``info("mobilenet_v1", 160, arch_kwargs={"alpha": 0.5})["macs"]``.
    """
    from mobilekit import archs

    arch_kwargs = dict(arch_kwargs or {})
    model = archs.create(arch, input_shape=(input_size, input_size, 3), classes=classes, **arch_kwargs)
    summary = complexity(model)
    peak = peak_activation_elements(model)
    result = {"arch": archs.resolve(arch), "metaparameters": arch_kwargs, "input_shape": [input_size, input_size, 3],
              "classes": classes, "params": summary["params"], "trainable_params": summary["trainable_params"],
              "macs": summary["macs"], "weight_bytes": weight_bytes(model),
              "peak_activation_bytes": {"int8": peak, "float32": 4 * peak}, "layers": summary["layers"]}
    if devices:
        result["arm"] = untrained_arm(model, list(devices))
    return (result, model) if return_model else result


def untrained_arm(model, device_names: list[str]) -> dict:
    """Emulated counts and device predictions for the untrained float and int8 files of ``model``."""
    from mobilekit.bench.devices import arm_section
    from mobilekit.export_tflite import convert_pair, random_calibration

    pair = convert_pair(model, random_calibration(model.input_shape[1:]))
    return {kind: arm_section(pair[kind], device_names=device_names) for kind in ("float", "int8")}

