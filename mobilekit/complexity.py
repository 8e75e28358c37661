"""Model complexity, the one module for it: parameters, MACs, weight bytes and activation memory, from a Keras
model (``complexity``, ``weight_bytes``, ``peak_activation_elements``) or from a .tflite flatbuffer
alone, no Keras (``analyze``).

- A MAC is one multiply plus one add of a conv or dense layer; a grouped conv counts per group, a depthwise
  conv per channel. Other layers (and frozen depthwise convs standing in for poolings) count 0 MACs, as in the
  papers' tables. In a .tflite: CONV_2D (per group), DEPTHWISE_CONV_2D and FULLY_CONNECTED, from the weight
  and output tensor shapes.
- Weight bytes of a .tflite: every constant tensor (weights, biases, other constants) as stored.
- Activation lifetimes in a .tflite: a non-constant tensor lives from the op that produces it (model inputs
  from before the first op) to the last op that reads it (model outputs to the end). Ops run in the file's
  order, as the interpreter runs them.
- Peak live activation memory: the largest sum of live tensor bytes while one op runs (its inputs and outputs
  included). LiteRT's arena planner can reuse memory in place and XNNPACK packs its own buffers, so the
  interpreter's real arena can differ; this is the graph's lower-bound-free, planner-independent figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobilekit.tflite_file import Op, TfliteFile


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


_DTYPE_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "INT32": 4, "UINT8": 1, "INT64": 8, "INT16": 2, "INT8": 1,
                "FLOAT64": 8, "BOOL": 1, "INT4": 0.5}


@dataclass
class Lifetime:
    tensor: int
    name: str
    bytes: int
    first: int  # index of the producing op (-1: a model input)
    last: int  # index of the last reading op (len(ops): a model output)


def tensor_bytes(f: TfliteFile, index: int) -> int:
    t = f.tensors[index]
    return int(np.ceil(int(np.prod(t.shape, dtype=np.int64)) * _DTYPE_BYTES.get(t.dtype, 4)))


def op_macs(f: TfliteFile, op: Op) -> int:
    """Multiply-accumulates of one conv / depthwise / fully-connected op (0 for others)."""
    if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or len(op.inputs) < 2:
        return 0
    weight = f.tensors[op.inputs[1]].shape
    out = f.tensors[op.outputs[0]].shape
    out_elements = int(np.prod(out, dtype=np.int64))
    if op.name == "CONV_2D":  # weight (Cout, kh, kw, Cin / groups)
        return out_elements * int(np.prod(weight[1:]))
    if op.name == "DEPTHWISE_CONV_2D":  # weight (1, kh, kw, Cout)
        return out_elements * int(weight[1] * weight[2])
    return out_elements * int(weight[-1])  # FULLY_CONNECTED: weight (Cout, Cin)


def _is_constant(f: TfliteFile, index: int) -> bool:
    return f.tensors[index].data is not None


def lifetimes(f: TfliteFile) -> list[Lifetime]:
    """Every activation (non-constant) tensor's first and last op index."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    graph_inputs = {t.index for t in f.inputs}
    for i in graph_inputs:
        first[i] = -1
    for op in f.ops:
        for t in op.inputs:
            if t >= 0 and not _is_constant(f, t):
                first.setdefault(t, op.index)  # an input nothing produced (e.g. a variable)
                last[t] = op.index
        for t in op.outputs:
            first.setdefault(t, op.index)
            last.setdefault(t, op.index)
    end = len(f.ops)
    for t in f.outputs:
        last[t.index] = end
    return [Lifetime(t, f.tensors[t].name, tensor_bytes(f, t), first[t], last.get(t, first[t]))
            for t in sorted(first)]


def peak_activation_bytes(f: TfliteFile, lives: list[Lifetime] | None = None) -> dict:
    """{"bytes", "op": the op index at the peak, "live": tensor names live then}."""
    lives = lifetimes(f) if lives is None else lives
    peak, at = 0, -1
    for step in range(len(f.ops)):
        live = sum(lt.bytes for lt in lives if lt.first <= step <= lt.last)
        if live > peak:
            peak, at = live, step
    names = [lt.name for lt in lives if lt.first <= at <= lt.last] if at >= 0 else []
    return {"bytes": int(peak), "op": at, "op_name": f.ops[at].name if at >= 0 else None, "live": names}


def analyze(f: TfliteFile) -> dict:
    """Per-op table and totals: MACs, weight bytes, activation lifetimes, peak activation bytes."""
    constants = {t.index for t in f.tensors if t.data is not None}
    per_op = []
    for op in f.ops:
        weights = sum(tensor_bytes(f, t) for t in op.inputs if t in constants)
        out = f.tensors[op.outputs[0]] if op.outputs else None
        per_op.append({"index": op.index, "op": op.name, "macs": op_macs(f, op), "weight_bytes": weights,
                       "output_shape": list(out.shape) if out else [], "output_dtype": out.dtype if out else None})
    by_type: dict[str, dict] = {}
    for row in per_op:
        agg = by_type.setdefault(row["op"], {"count": 0, "macs": 0, "weight_bytes": 0})
        agg["count"] += 1
        agg["macs"] += row["macs"]
        agg["weight_bytes"] += row["weight_bytes"]
    lives = lifetimes(f)
    return {"macs": int(sum(r["macs"] for r in per_op)),
            "weight_bytes": int(sum(tensor_bytes(f, t) for t in constants)),
            "peak_activation": peak_activation_bytes(f, lives), "activation_lifetimes": lives,
            "by_op_type": dict(sorted(by_type.items())), "ops": per_op}
