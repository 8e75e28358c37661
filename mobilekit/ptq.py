"""Post-training quantisation options: activation range methods and bias correction.

The converter's own post-training path is: float .tflite -> calibration (min and max of every activation
over the representative images, stored in the file) -> the MLIR quantizer. mobilekit runs the same two
steps itself (TFLite's Calibrator and ``mlir_quantize``, what ``TFLiteConverter`` calls) so it can change
what sits between them:

- ``calibration="percentile"``: each activation range clipped to the 0.01st-99.99th percentile of the
  calibration values; ``"mse"``: the clipped range (a grid of 100 shrinkings of the min-max range) that
  minimises the quantisation error over the calibration values (from a 2,048-bin histogram per tensor).
  ``"minmax"`` is the converter's: the file is byte-identical to ``convert_int8``'s.
- ``bias_correction``: after quantisation, each conv / depthwise / fully-connected bias absorbs the
  expected output shift its weights' rounding causes: ``-(W_int8 - W_float) . E[x]`` per output channel,
  with ``E[x]`` the mean of the layer's input over the calibration images (Nagel et al. 2019, "Data-Free
  Quantization Through Weight Equalization and Bias Correction", empirical variant).

The model input (pixels: its range is exact) and the softmax output (fixed 1/256 scale) keep their ranges.
"""

from __future__ import annotations

import numpy as np

from mobilekit.errors import MobilekitError
from mobilekit.tflite_file import model_object, pack_model

CALIBRATION_METHODS = ("minmax", "percentile", "mse")
BINS = 2048
PERCENTILE = 99.99


def _ranged_tensors(content: bytes, model) -> dict[int, tuple[float, float]]:
    """{tensor index: (min, max)} of the activations the calibration recorded (inputs and softmax excluded)."""
    from mobilekit.tflite_file import TfliteFile

    graph = model.subgraphs[0]
    fixed = set(int(i) for i in graph.inputs)
    for op in TfliteFile(content).ops:
        if op.name == "SOFTMAX":
            fixed.update(op.outputs)
    out = {}
    for i, t in enumerate(graph.tensors):
        q = t.quantization
        if i in fixed or q is None or q.min is None or q.max is None or len(q.min) != 1:
            continue
        out[i] = (float(q.min[0]), float(q.max[0]))
    return out


def histograms(content: bytes, ranges: dict, images: np.ndarray) -> dict[int, np.ndarray]:
    from mobilekit.numerics import reference_interpreter

    it = reference_interpreter(content)
    detail = it.get_input_details()[0]
    hists = {i: np.zeros(BINS, np.int64) for i in ranges}
    for image in images:
        it.set_tensor(detail["index"], image[None].astype(np.float32))
        it.invoke()
        for i, (lo, hi) in ranges.items():
            if hi > lo:
                hists[i] += np.histogram(it.get_tensor(i), BINS, (lo, hi))[0]
    return hists


def _quant_error(centers, counts, lo: float, hi: float) -> float:
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # TFLite nudges the range to hold zero
    scale = (hi - lo) / 255.0
    if scale <= 0:
        return float("inf")
    q = np.clip(np.round((centers - lo) / scale), 0, 255) * scale + lo
    return float(np.sum(counts * (centers - q) ** 2))


def choose_range(hist: np.ndarray, lo: float, hi: float, method: str) -> tuple[float, float]:
    """An activation's clipped range from its calibration histogram over [lo, hi]."""
    if method == "minmax" or hist.sum() == 0:
        return lo, hi
    edges = np.linspace(lo, hi, BINS + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    if method == "percentile":
        cdf = np.cumsum(hist) / hist.sum()
        low = edges[int(np.searchsorted(cdf, (100 - PERCENTILE) / 100))] if lo < 0 else lo
        high = edges[min(BINS, int(np.searchsorted(cdf, PERCENTILE / 100)) + 1)]
        return float(min(low, 0.0)), float(max(high, 0.0))
    candidates = [(lo * f if lo < 0 else lo, hi * f) for f in np.linspace(0.3, 1.0, 100)]
    return min(candidates, key=lambda r: _quant_error(centers, hist, *r))


def set_ranges(content: bytes, method: str, images: np.ndarray) -> tuple[bytes, dict]:
    """The calibrated model with every activation range chosen by ``method``; returns (model, summary)."""
    if method not in CALIBRATION_METHODS:
        raise MobilekitError(f"calibration must be one of {', '.join(CALIBRATION_METHODS)}; received {method!r}")
    model = model_object(content)
    ranges = _ranged_tensors(content, model)
    if method == "minmax":
        return content, {"tensors": len(ranges), "clipped": 0}
    hists = histograms(content, ranges, images)
    clipped = 0
    for i, (lo, hi) in ranges.items():
        new_lo, new_hi = choose_range(hists[i], lo, hi, method)
        q = model.subgraphs[0].tensors[i].quantization
        q.min, q.max = [float(new_lo)], [float(new_hi)]
        clipped += int(new_hi < hi or new_lo > lo)
    return pack_model(model), {"tensors": len(ranges), "clipped": clipped}


WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


def weighted_ops(f) -> dict:
    """A TfliteFile's conv / depthwise / fully-connected ops that have a bias, by their output's layer key."""
    from mobilekit.layer_map import output_key

    return {output_key(f.tensors[op.outputs[0]].name): op for op in f.ops
            if op.name in WEIGHTED and len(op.inputs) > 2 and op.inputs[2] >= 0}


INT32_MAX = 2**31 - 1


def repair_saturated_biases(int8_content: bytes, float_content: bytes) -> tuple[bytes, list[dict]]:
    """``int8_content`` with every output channel whose int32 bias does not fit given a channel weight scale large
    enough for it; returns (file, the rewrites log's entries, one per layer repaired).

    A pruned output channel (all its weights zero) gets a weight scale of about 1e-9 from the converter, so its bias
    in units of ``input scale x weight scale`` is beyond int32 and saturates: the channel then outputs a wrong
    constant (EfficientNet-Lite0 pruned to 50%: 66 pruned-out channels, 7 biases saturated, 11 points of top-1
    lost). The repaired channel's scale is the one its float bias needs (at least its own), its weights are
    requantized to it from the float file (zeros stay zeros) and its bias is the float bias in the new units. A file
    with no saturated bias comes back unchanged, byte for byte.
    """
    from mobilekit.tflite_file import TfliteFile

    q_file, f_file = TfliteFile(int8_content), TfliteFile(float_content)
    q_ops, f_ops = weighted_ops(q_file), weighted_ops(f_file)
    model, log = None, []
    for key, q_op in q_ops.items():
        f_op = f_ops.get(key)
        w_t, b_t, x_t = (q_file.tensors[q_op.inputs[i]] for i in (1, 2, 0))
        if (f_op is None or w_t.data is None or b_t.data is None or w_t.scale is None or x_t.scale is None
                or w_t.scale.size != b_t.data.size):  # per-tensor weights: one scale, set by the largest weight
            continue
        bias = f_file.tensors[f_op.inputs[2]].data
        w_float = f_file.tensors[f_op.inputs[1]].data
        if bias is None or w_float is None or w_float.shape != w_t.data.shape or bias.shape != b_t.data.shape:
            continue
        axis = 3 if q_op.name == "DEPTHWISE_CONV_2D" else 0
        x_scale, w_scale = float(x_t.scale[0]), w_t.scale.astype(np.float64)
        needed = np.abs(bias.astype(np.float64)) / (x_scale * INT32_MAX)
        bad = np.flatnonzero(needed > w_scale)
        if not bad.size:
            continue
        if model is None:
            model = model_object(int8_content)
        tensors = model.subgraphs[0].tensors
        w_scale[bad] = 2 * needed[bad]  # a factor 2 of headroom
        weights = np.moveaxis(w_t.data.copy(), axis, 0)
        floats = np.moveaxis(w_float.astype(np.float64), axis, 0)
        for c in bad:
            weights[c] = np.clip(np.round(floats[c] / w_scale[c]), -127, 127)
        new_bias = b_t.data.copy()
        new_bias[bad] = np.round(bias[bad].astype(np.float64) / (x_scale * w_scale[bad]))
        stored = np.moveaxis(weights, 0, axis).astype(np.int8)
        model.buffers[tensors[w_t.index].buffer].data = stored.view(np.uint8).ravel()
        model.buffers[tensors[b_t.index].buffer].data = new_bias.view(np.uint8).ravel()
        tensors[w_t.index].quantization.scale = w_scale.astype(np.float32).tolist()
        tensors[b_t.index].quantization.scale = (x_scale * w_scale).astype(np.float32).tolist()
        log.append({"rewrite": "bias-range", "layer": key, "applied": True, "channels": [int(c) for c in bad],
                    "zero_channels": int(sum(not np.any(floats[c]) for c in bad))})
    return (int8_content, []) if model is None else (pack_model(model), log)


def _input_means(float_content: bytes, keys: dict[str, int], images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel mean of each weighted op's input in the float model, by output key."""
    from mobilekit.numerics import reference_interpreter

    it = reference_interpreter(float_content)
    detail = it.get_input_details()[0]
    sums: dict[str, np.ndarray] = {}
    for image in images:
        it.set_tensor(detail["index"], image[None].astype(np.float32))
        it.invoke()
        for key, tensor in keys.items():
            x = it.get_tensor(tensor).astype(np.float64)
            m = x.reshape(-1, x.shape[-1]).mean(axis=0)
            sums[key] = sums.get(key, 0) + m
    return {k: v / len(images) for k, v in sums.items()}


def bias_correct(int8_content: bytes, float_content: bytes, images: np.ndarray) -> tuple[bytes, dict]:
    """``int8_content`` with each weighted op's int32 bias shifted by its weights' expected rounding error
    (see the module docstring); returns (file, {"layers": n, "max_shift_lsb": ...})."""
    from mobilekit.tflite_file import TfliteFile

    q_file, f_file = TfliteFile(int8_content), TfliteFile(float_content)
    q_ops, f_ops = weighted_ops(q_file), weighted_ops(f_file)
    common = [k for k in q_ops if k in f_ops]
    means = _input_means(float_content, {k: f_ops[k].inputs[0] for k in common}, images)
    model = model_object(int8_content)
    shifts = []
    for key in common:
        q_op, f_op = q_ops[key], f_ops[key]
        w_t, b_t, x_t = (q_file.tensors[q_op.inputs[i]] for i in (1, 2, 0))
        w_float = f_file.tensors[f_op.inputs[1]].data.astype(np.float64)
        if w_t.data is None or b_t.data is None or w_float.shape != w_t.data.shape:
            continue
        axis = 3 if q_op.name == "DEPTHWISE_CONV_2D" else 0
        shape = [1] * w_t.data.ndim
        shape[axis] = -1
        w_deq = (w_t.data.astype(np.float64) - w_t.zero_point.reshape(shape)) * w_t.scale.reshape(shape)
        eps = w_deq - w_float
        mean = means[key]
        if q_op.name == "DEPTHWISE_CONV_2D":
            delta = -(eps.sum(axis=(0, 1, 2)) * mean)
        elif q_op.name == "CONV_2D":  # grouped convs (ShuffleNet v1) see their group's input channels
            groups = mean.size // eps.shape[3]
            if groups * eps.shape[3] != mean.size or eps.shape[0] % groups:
                continue
            eps_g = eps.reshape(groups, eps.shape[0] // groups, *eps.shape[1:])
            delta = -np.einsum("gohwi,gi->go", eps_g, mean.reshape(groups, -1)).reshape(-1)
        else:
            delta = -(eps @ mean)
        bias_scale = float(x_t.scale[0]) * w_t.scale.astype(np.float64)
        lsb = np.round(delta / bias_scale)
        new_bias = np.clip(b_t.data.astype(np.int64) + lsb.astype(np.int64), -2**31, 2**31 - 1).astype(np.int32)
        buffer = model.buffers[model.subgraphs[0].tensors[b_t.index].buffer]
        buffer.data = new_bias.view(np.uint8).tolist()
        shifts.append(float(np.abs(lsb).max()) if lsb.size else 0.0)
    return pack_model(model), {"layers": len(shifts), "max_shift_lsb": max(shifts, default=0.0)}
