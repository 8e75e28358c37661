"""Model analysis from a .tflite flatbuffer alone (no Keras): MACs, weights, activation memory.

- MACs per op: CONV_2D (per group), DEPTHWISE_CONV_2D and FULLY_CONNECTED, from the
  weight and output tensor shapes; other ops count 0 MACs, as in the papers' tables.
- Weight bytes: every constant tensor (weights, biases, other constants) as stored.
- Activation lifetimes: a non-constant tensor lives from the op that produces it (model
  inputs from before the first op) to the last op that reads it (model outputs to the
  end). Ops run in the file's order, as the interpreter runs them.
- Peak live activation memory: the largest sum of live tensor bytes while one op runs
  (its inputs and outputs included). LiteRT's arena planner can reuse memory in place
  and XNNPACK packs its own buffers, so the interpreter's real arena can differ; this
  is the graph's lower-bound-free, planner-independent figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobilekit.tflite_file import Op, TfliteFile

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
