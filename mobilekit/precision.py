"""Mixed precision: keep named layers in float or int16 activations, or let an accuracy budget choose them.

The build's int8 file comes from the TFLite converter (full int8, the default gate). When a layer must leave
int8, the file is made again from the build's float .tflite (:class:`Quantizer`): layers kept in float through
the converter's own quantizer with their ops denylisted (a DEQUANTIZE before, a QUANTIZE after), layers with
int16 activations through Google's ai-edge-quantizer (AEQ), a per-op recipe of int8 (``static_wi8_ai8``) and
16x8 (``static_wi8_ai16``: int16 activations, int8 weights). Both start from the build's calibration images and
range method (``percentile`` / ``mse``, mobilekit.ptq).

Layers are named as ``mobilekit numerics`` prints them (the Keras layer an op belongs to; ``output0`` for the
graph's output), with shell globs. ``auto`` keeps the converter's file when its top-1 agreement with the float
file on held-out images already meets the budget (same bytes as ``precision="int8"``); otherwise it lifts
layers to float one at a time in the order the numerics ranks them (lowest SQNR first) until the budget holds,
then drops every lift the budget does not need (the fewest layers), and reports what each lift cost (agreement,
output SQNR, bytes, host time).

Example: ``Quantizer(float_bytes, calibration).quantize({"block_16_project_bn": "float", "conv_last": "int16"})``,
or the build's stage: ``assign(int8_bytes, float_bytes, calibration, held_out, precision="auto", budget=2.0)``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import re
import warnings

import numpy as np

from mobilekit.errors import MobilekitError

PRECISIONS = ("int8", "int16x8", "auto")
DEFAULT_BUDGET_POINTS = 1.0  # top-1 agreement with the float file auto may lose, in percentage points
MAX_BUDGET_POINTS = 50.0
SEARCH_IMAGES = 2000  # held-out images auto judges candidates on (the first ones; all of them when fewer)
SIGNATURE_KEY = "serving_default"


def check_settings(precision: str, budget: float | None, min_output_sqnr: float | None, keep_float, int16) -> None:
    """The settings alone (no model yet): names, ranges and combinations.

    Raises:
        MobilekitError: naming the bad value.
    """
    from mobilekit._checks import check_number

    if precision not in PRECISIONS:
        raise MobilekitError(f"precision must be one of {', '.join(PRECISIONS)}; received precision={precision!r}")
    if budget is not None:
        check_number("max_agreement_drop", budget, float, 0, MAX_BUDGET_POINTS)
    if min_output_sqnr is not None:
        check_number("min_output_sqnr", min_output_sqnr, float, 0, 150)
    if precision != "auto" and (budget is not None or min_output_sqnr is not None):
        raise MobilekitError("max_agreement_drop / min_output_sqnr set the budget of precision='auto'; received "
                             f"precision={precision!r}")
    if budget is not None and min_output_sqnr is not None:
        raise MobilekitError("give one budget: max_agreement_drop or min_output_sqnr, not both")
    for flag, patterns in (("keep_float", keep_float), ("int16", int16)):
        for p in patterns:
            if not isinstance(p, str) or not p.strip() or len(p) > 200:
                raise MobilekitError(f"{flag} names layers (globs allowed); received {p!r}")
    both = [p for p in keep_float if any(fnmatch.fnmatchcase(p, q) or fnmatch.fnmatchcase(q, p) for q in int16)]
    if both:
        raise MobilekitError(f"layer {both[0]!r} is named by both --keep-float and --int16")
    if precision == "int16x8" and int16:
        raise MobilekitError(f"int16={list(int16)!r} with precision='int16x8': every layer has int16 activations "
                             "already")


def with_signature(content: bytes) -> bytes:
    """``content`` with a ``serving_default`` SignatureDef (input ``input``, outputs ``output_<i>``): AEQ runs
    models through their signature; the converter's concrete-function path writes none."""
    from ai_edge_litert import schema_py_generated as schema

    from mobilekit.tflite_file import model_object, pack_model

    model = model_object(content)
    if model.signatureDefs:
        return content
    graph = model.subgraphs[0]

    def tensor_map(name: str, index: int):
        t = schema.TensorMapT()
        t.name, t.tensorIndex = name, int(index)
        return t

    sig = schema.SignatureDefT()
    sig.inputs = [tensor_map("input" if i == 0 else f"input_{i}", idx) for i, idx in enumerate(graph.inputs)]
    sig.outputs = [tensor_map(f"output_{i}", idx) for i, idx in enumerate(graph.outputs)]
    sig.signatureKey, sig.subgraphIndex = SIGNATURE_KEY, 0
    model.signatureDefs = [sig]
    return pack_model(model)


def layer_scopes(float_content: bytes) -> dict[str, list[tuple[str, str]]]:
    """{layer key: [(AEQ op scope, converter node name), ...]} of the float file's ops, in graph order
    (:attr:`mobilekit.layer_map.LayerMap.scopes`)."""
    from mobilekit.layer_map import LayerMap

    return LayerMap.of(float_content).scopes


def match_layers(patterns, keys, flag: str) -> list[str]:
    """The layer keys the globs name, in ``keys`` order.

    Raises:
        MobilekitError: a pattern that matches no layer (with a few of the layers there are).
    """
    keys = list(keys)
    chosen: list[str] = []
    for p in patterns:
        hits = [k for k in keys if fnmatch.fnmatchcase(k, p)]
        if not hits:
            sample = ", ".join(keys[:6]) + (f", ... ({len(keys)} layers)" if len(keys) > 6 else "")
            raise MobilekitError(f"--{flag.replace('_', '-')} {p!r} matches no layer of the model (layers as "
                                 f"`mobilekit numerics` names them: {sample})")
        chosen += [k for k in hits if k not in chosen]
    return [k for k in keys if k in chosen]


@contextlib.contextmanager
def _quiet():
    """AEQ's progress bars and size lines (tqdm / print) and the MLIR quantizer's settings line (native, fd 2)
    kept out of the build's log."""
    from mobilekit.backend import quiet_native_stderr

    sink = io.StringIO()
    with quiet_native_stderr(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LiteRT's "preserve_all_tensors is for debugging" in AEQ's calibration
        yield


class Quantizer:
    """The float file calibrated once, then quantized under any assignment of layers ({key: "float" | "int16"}).

    Float lifts alone go through the converter's own quantizer (TFLite's Calibrator on the float file, the
    build's range ``method`` (mobilekit.ptq), then ``mlir_quantize`` with the lifted ops' nodes denylisted: the
    same quantizer and ranges as the build's int8 file). Anything with int16 activations goes through
    ai-edge-quantizer (``static_wi8_ai8`` / ``static_wi8_ai16`` per op, ``no_quantize`` for float), with AEQ's
    min/max ranges clipped by the same ``method``.
    """

    def __init__(self, float_content: bytes, calibration: np.ndarray, method: str = "minmax"):
        self.float, self.calibration, self.method = float_content, calibration, method
        self.scopes = layer_scopes(float_content)
        self._calibrated: bytes | None = None
        self._aeq: bytes | None = None
        self._aeq_ranges: dict = {}
        self._ranges: dict = {}

    def quantize(self, lifts: dict[str, str], activations: int = 8) -> bytes:
        """The file with every layer at ``activations`` bits (weights int8) except ``lifts``."""
        if activations == 8 and all(to == "float" for to in lifts.values()):
            return self._converter(sorted(lifts))
        return self._aeq_quantize(lifts, activations)

    def _converter(self, float_keys: list[str]) -> bytes:
        from tensorflow.lite.python import convert as tfl_convert
        from tensorflow.lite.python.optimize import calibrator

        from mobilekit.backend import tf
        from mobilekit.ptq import set_ranges

        if self._calibrated is None:
            images = self.calibration.astype(np.float32)
            with _quiet():
                raw = calibrator.Calibrator(self.float).calibrate(
                    lambda: ([images[i:i + 1]] for i in range(len(images))))
                self._calibrated = set_ranges(raw, self.method, images)[0]
        nodes = [node for key in float_keys for _, node in self.scopes[key]]
        with _quiet():
            return tfl_convert.mlir_quantize(self._calibrated, False, fully_quantize=True, input_data_type=tf.int8,
                                             output_data_type=tf.int8, denylisted_nodes=nodes or None)

    def _aeq_quantize(self, lifts: dict[str, str], activations: int) -> bytes:
        from ai_edge_quantizer import qtyping, quantizer, recipe

        if self._aeq is None:
            self._aeq = with_signature(self.float)
            q = quantizer.Quantizer(self._aeq)
            q.load_quantization_recipe(recipe.static_wi8_ai8())
            samples = [{"input": self.calibration[i:i + 1].astype(np.float32)} for i in range(len(self.calibration))]
            with _quiet():
                self._aeq_ranges = q.calibrate({SIGNATURE_KEY: samples}, num_threads=1)
            self._ranges = self._true_ranges()
        int16 = {node for key, to in lifts.items() if to == "int16" for _, node in self.scopes[key]}
        q = quantizer.Quantizer(self._aeq)
        q.load_quantization_recipe(recipe.static_wi8_ai16() if activations == 16 else recipe.static_wi8_ai8())
        every = qtyping.TFLOperationName.ALL_SUPPORTED
        for key, to in lifts.items():
            regex = "^(" + "|".join(re.escape(scope) for scope, _ in self.scopes[key]) + ")$"
            if to == "float":
                q.update_quantization_recipe(regex=regex, operation_name=every, algorithm_key="no_quantize")
            else:
                q.add_static_config(regex, every, 16, 8)
        # 16-bit activations take the full min/max (clipping buys nothing at 65,536 levels); 8-bit ones the method's.
        ranges = {}
        for name, r in self._aeq_ranges.items():
            full, clipped = self._ranges.get(name, ((None, None), (None, None)))
            wide = activations == 16 or name in int16
            lo, hi = full if wide else clipped
            ranges[name] = dict(r) if lo is None else {**r, "min": np.full_like(r["min"], lo),
                                                       "max": np.full_like(r["max"], hi)}
        with _quiet():
            return bytes(q.quantize(ranges, enable_progress_bar=False, enable_progress_report=False).quantized_model)

    def _true_ranges(self) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
        """{tensor name: ((min, max) over the calibration images, the range the build's method keeps)}.

        AEQ's own calibration keeps a moving average of each image's min and max, narrower than the converter's
        min/max over all images; these are the converter's ranges (mobilekit.ptq's clipping for other methods).
        The model input and softmax outputs keep AEQ's."""
        from mobilekit.numerics import reference_interpreter
        from mobilekit.ptq import histograms, choose_range
        from mobilekit.tflite_file import TfliteFile

        f = TfliteFile(self._aeq)
        fixed = {t.name for t in f.inputs} | {f.tensors[op.outputs[0]].name for op in f.ops if op.name == "SOFTMAX"}
        index = {t.name: t.index for t in f.tensors}
        names = [n for n, r in self._aeq_ranges.items() if n in index and n not in fixed and np.size(r["min"]) == 1]
        images = self.calibration.astype(np.float32)
        it = reference_interpreter(self._aeq)
        detail = it.get_input_details()[0]
        low = {n: np.inf for n in names}
        high = {n: -np.inf for n in names}
        for image in images:
            it.set_tensor(detail["index"], image[None])
            it.invoke()
            for n in names:
                v = it.get_tensor(index[n])
                low[n], high[n] = min(low[n], float(v.min())), max(high[n], float(v.max()))
        full = {n: (min(low[n], 0.0), max(high[n], 0.0)) for n in names}
        if self.method == "minmax":
            return {n: (r, r) for n, r in full.items()}
        hists = histograms(self._aeq, {index[n]: full[n] for n in names}, images)
        return {n: (full[n], choose_range(hists[index[n]], *full[n], self.method)) for n in names}


def probabilities(content: bytes, images: np.ndarray) -> np.ndarray:
    """(N, classes) output probabilities of ``content`` on float ``images``, batch 1, LiteRT with XNNPACK."""
    from mobilekit.litert import make_interpreter, quantize_input
    from mobilekit.numerics import probabilities_of

    it = make_interpreter(content)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rows = []
    for i in range(len(images)):
        it.set_tensor(inp["index"], quantize_input(images[i:i + 1], inp))
        it.invoke()
        rows.append(probabilities_of(it.get_tensor(out["index"]), out))
    return np.stack(rows)


def compare(p_quant: np.ndarray, p_float: np.ndarray) -> dict:
    """Top-1 agreement and output SQNR (dB) of a quantized file's probabilities against the float file's."""
    from mobilekit.numerics import sqnr_db

    agree = float(np.mean(np.argmax(p_quant, 1) == np.argmax(p_float, 1)))
    d = (p_float - p_quant).astype(np.float64)
    return {"top1_agreement": agree, "output_sqnr_db": sqnr_db(float(np.sum(p_float.astype(np.float64) ** 2)),
                                                          float(np.sum(d * d)))}


def output_floor(int8_content: bytes, p_float: np.ndarray) -> dict:
    """What the quantized output alone allows: the float file's probabilities rounded to ``int8_content``'s output
    scale and zero point (near-ties of the best classes become ties the argmax breaks by index)."""
    from mobilekit.tflite_file import TfliteFile

    out = TfliteFile(int8_content).outputs[0]
    if out.scale is None or out.scale.size != 1 or out.dtype not in ("INT8", "UINT8", "INT16"):
        return compare(p_float, p_float)
    info = np.iinfo(np.dtype(out.dtype.lower()))
    scale, zero_point = float(out.scale[0]), int(out.zero_point[0])
    q = np.clip(np.round(p_float / np.float32(scale)) + zero_point, info.min, info.max)
    return compare((q - zero_point) * scale, p_float)


def layer_precisions(content: bytes) -> dict:
    """What each op of a file computes in: ``{"layers": {key: "int8" | "int16" | "float"}, "ops": {"int8": n,
    "int16": n, "float": n, "conversions": n (QUANTIZE / DEQUANTIZE)}, "full_int8", "io": [in, out dtypes]}``."""
    from mobilekit.numerics import op_outputs
    from mobilekit.tflite_file import TfliteFile

    f = TfliteFile(content)
    kinds = {"INT8": "int8", "UINT8": "int8", "INT16": "int16"}
    layers: dict[str, str] = {}
    counts = {"int8": 0, "int16": 0, "float": 0, "conversions": 0}
    for row in op_outputs(content):
        if row["op"] in ("QUANTIZE", "DEQUANTIZE"):
            counts["conversions"] += 1
            continue
        kind = kinds.get(row["dtype"].upper(), "float")
        counts[kind] += 1
        layers.setdefault(row["key"], kind)
    io_types = [f.inputs[0].dtype.lower(), f.outputs[0].dtype.lower()]
    return {"full_int8": not f.float_problems() and counts["int16"] == 0 and counts["conversions"] == 0,
            "io": io_types, "ops": counts, "layers": layers}


def xnnpack(content: bytes) -> dict:
    """XNNPACK's partitions of the file on this host, and the ops it leaves to LiteRT's own kernels."""
    from mobilekit.backend import quiet_native_stderr
    from mobilekit.litert import delegate_partitions, make_interpreter

    with quiet_native_stderr():
        it = make_interpreter(content)
    partitions, outside = delegate_partitions(it)
    return {"partitions": partitions, "ops_outside": len(outside), "ops_outside_names": sorted(set(outside))}


def _budget_text(budget: float | None, min_output_sqnr: float | None) -> str:
    if min_output_sqnr is not None:
        return f"output SQNR >= {min_output_sqnr:g} dB"
    return f"top-1 agreement with float >= {100 - budget:g}%"


def _meets(measured: dict, budget: float | None, min_output_sqnr: float | None) -> bool:
    if min_output_sqnr is not None:
        return measured["output_sqnr_db"] >= min_output_sqnr
    return measured["top1_agreement"] >= 1 - budget / 100 - 1e-12


def assign(int8_content: bytes, float_content: bytes, calibration: np.ndarray, held_out: np.ndarray, *,
           precision: str = "int8", budget: float | None = None, min_output_sqnr: float | None = None,
           keep_float=(), int16=(), method: str = "minmax", say=print, rank_images: int = 200) -> tuple[bytes, dict]:
    """(the file to ship, report.json's ``precision`` section) for the build's converter file ``int8_content``.

    ``held_out``: float images auto judges on (at most SEARCH_IMAGES are used); ``calibration``: the build's
    calibration images; ``method``: its calibration method; ``say``: one progress line per candidate.

    Raises:
        MobilekitError: a layer pattern that matches nothing, a layer both kept in float and int16, or an
            ``auto`` budget no assignment meets.
    """
    check_settings(precision, budget, min_output_sqnr, keep_float, int16)
    if precision == "auto" and budget is None and min_output_sqnr is None:
        budget = DEFAULT_BUDGET_POINTS
    scopes = layer_scopes(float_content)
    explicit = {k: "float" for k in match_layers(keep_float, scopes, "keep_float")}
    for k in match_layers(int16, scopes, "int16"):
        if k in explicit:
            raise MobilekitError(f"layer {k!r} is named by both --keep-float and --int16")
        explicit[k] = "int16"
    activations = 16 if precision == "int16x8" else 8
    images = held_out[:SEARCH_IMAGES]
    section: dict = {"mode": precision, "explicit": explicit, "lifted": [], "steps": [],
                     "search_images": int(len(images))}
    if precision == "auto":
        section["budget"] = ({"min_output_sqnr_db": min_output_sqnr} if min_output_sqnr is not None
                             else {"max_agreement_drop_points": budget})
    if precision == "int8" and not explicit:
        return int8_content, {**section, "quantizer": "TFLite converter", **layer_precisions(int8_content)}
    p_float = probabilities(float_content, images)
    converter = compare(probabilities(int8_content, images), p_float)
    section["int8"] = {**converter, "bytes": len(int8_content)}
    section["output_floor"] = output_floor(int8_content, p_float)
    quantizer: Quantizer | None = None

    def make(lifts: dict) -> bytes:
        nonlocal quantizer
        if quantizer is None:
            quantizer = Quantizer(float_content, calibration, method)
        return quantizer.quantize(lifts, activations)

    if precision != "auto":
        content = make(explicit)
        chosen = compare(probabilities(content, images), p_float)
    else:
        content, chosen = (make(explicit), None) if explicit else (int8_content, converter)
        chosen = chosen or compare(probabilities(content, images), p_float)
        say(f"   int8{' with the named lifts' if explicit else ''}: top-1 agreement {chosen['top1_agreement']:.2%}, "
            f"output SQNR {chosen['output_sqnr_db']:.1f} dB; budget: {_budget_text(budget, min_output_sqnr)}")
        if not _meets(chosen, budget, min_output_sqnr):
            content, chosen = _search(int8_content, float_content, scopes, images, p_float, explicit, make, section,
                                      budget, min_output_sqnr, say, rank_images)
    aeq = precision == "int16x8" or "int16" in explicit.values()
    used = f"ai-edge-quantizer {_aeq_version()}" if aeq else "TFLite converter" + (
        "" if content is int8_content else " (lifted ops denylisted)")
    return content, {**section, "chosen": {**chosen, "bytes": len(content)}, "quantizer": used,
                     **layer_precisions(content), "xnnpack": xnnpack(content)}


STEP_TIMING_RUNS = 20  # interleaved batch-1 runs per file when auto times a lift (a cost signal, not a benchmark)


def host_time_ratio(content: bytes, int8_content: bytes) -> float:
    """``content``'s median batch-1 host time over the converter file's, the two interleaved in one run."""
    from mobilekit.bench.harness import benchmark

    r = benchmark({"lifted": content, "int8": int8_content}, num_runs=STEP_TIMING_RUNS, warmup_runs=2)
    return r["lifted"]["median_ms"] / max(r["int8"]["median_ms"], 1e-9)


def _search(int8_content, float_content, scopes, images, p_float, explicit, make, section, budget, min_output_sqnr, say,
            rank_images) -> tuple[bytes, dict]:
    """Lift layers to float in the numerics' order until the budget holds, then drop the lifts it does not need."""
    from mobilekit.numerics import numerics

    ranked = [r["name"] for r in sorted(numerics(int8_content, float_content, images[:rank_images])["layers"],
                                        key=lambda r: r["sqnr_db"])]
    candidates = [k for k in ranked if k in scopes and k not in explicit]
    lifted: list[str] = []
    best = None
    for key in candidates:
        lifted.append(key)
        content = make({**explicit, **{k: "float" for k in lifted}})
        measured = compare(probabilities(content, images), p_float)
        slower = host_time_ratio(content, int8_content)
        section["steps"].append({"lift": key, "to": "float", "layers_lifted": len(lifted), **measured,
                                 "bytes": len(content), "host_time_vs_int8": slower})
        say(f"   lift {len(lifted)}: {key} -> float: top-1 agreement {measured['top1_agreement']:.2%}, output SQNR "
            f"{measured['output_sqnr_db']:.1f} dB, {len(content):,} bytes, {slower:.2f}x int8's host time")
        if _meets(measured, budget, min_output_sqnr):
            best = (content, measured)
            break
    if best is None:
        last = section["steps"][-1] if section["steps"] else {"top1_agreement": 0.0, "output_sqnr_db": 0.0}
        floor = section["output_floor"]
        raise MobilekitError(f"no precision assignment meets the budget ({_budget_text(budget, min_output_sqnr)}): "
                             f"with all {len(lifted)} ranked layers in float the file reaches "
                             f"{last['top1_agreement']:.2%} agreement, {last['output_sqnr_db']:.1f} dB (the int8 "
                             f"output's own rounding allows {floor['top1_agreement']:.2%}); widen the budget")
    for key in list(lifted[:-1]):  # the fewest layers: drop each lift the budget holds without
        trial = [k for k in lifted if k != key]
        content = make({**explicit, **{k: "float" for k in trial}})
        measured = compare(probabilities(content, images), p_float)
        if _meets(measured, budget, min_output_sqnr):
            lifted, best = trial, (content, measured)
            section["steps"].append({"drop": key, "layers_lifted": len(lifted), **measured, "bytes": len(content)})
            say(f"   without {key}: top-1 agreement {measured['top1_agreement']:.2%}: not needed, back to int8")
    section["lifted"] = lifted
    return best


def _aeq_version() -> str:
    from importlib.metadata import version

    return version("ai-edge-quantizer")
