"""Per-layer int8 numerics: where an int8 .tflite departs from the float model it was converted from.

Both files run in LiteRT's reference kernels with every intermediate tensor kept
(``experimental_preserve_all_tensors``; XNNPACK would fuse them away) on the same images. Each op output of
the int8 file is paired with the float file's output of the same Keras layer (the layer name in the
tensor's name, ``quant_`` prefixes of QAT wrappers dropped; graph outputs pair by position) and compared
after dequantisation, in graph order: SQNR, cosine, max and mean absolute error, the tensor's scale, and
what rounding alone would cost at that scale (the float values quantised with the int8 tensor's own scale
and zero point). Statistics stream over the images, so memory does not grow with their number.

Example: ``numerics(open("m.tflite", "rb").read(), open("m_float.tflite", "rb").read(), images)["layers"][0]``.
"""

from __future__ import annotations

import math

import numpy as np

from mobilekit.errors import MobilekitError

SQNR_CAP_DB = 150.0  # an exact match reports this (JSON has no infinity)
EPS = 1e-12


def reference_interpreter(content: bytes):
    """A LiteRT interpreter on the reference kernels (no XNNPACK) that keeps every intermediate tensor."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from mobilekit.backend import quiet_native_stderr

    try:
        with quiet_native_stderr():
            it = Interpreter(model_content=content, num_threads=1, experimental_preserve_all_tensors=True,
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise MobilekitError(f"LiteRT cannot load the model: {str(e).strip().splitlines()[0]}") from None
    return it


def op_outputs(content: bytes) -> list[dict]:
    """``[{"key", "op", "tensor", "scale", "zero_point", "shape"}]`` per op output, in graph order; the graph
    outputs get the keys ``output0``, ``output1``, ... (:class:`mobilekit.layer_map.LayerMap`'s keys)."""
    from mobilekit.layer_map import LayerMap

    layers = LayerMap.of(content)
    f = layers.file
    rows = []
    for op in f.ops:
        for index in op.outputs:
            t = f.tensors[index]
            quantized = t.dtype in ("INT8", "UINT8", "INT16") and t.scale is not None and t.scale.size == 1
            rows.append({"key": layers.key_of_tensor[index], "op": op.name, "tensor": index,
                         "dtype": t.dtype.lower(), "shape": list(t.shape),
                         "scale": float(t.scale[0]) if quantized else None,
                         "zero_point": int(t.zero_point[0]) if quantized else None})
    return rows


def pair(int8_rows: list[dict], float_rows: list[dict]) -> list[tuple[dict, dict]]:
    """(int8 row, float row) for every key that occurs once in each file with one shape, in int8 graph order."""
    def unique(rows):
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["key"]] = counts.get(r["key"], 0) + 1
        return {r["key"]: r for r in rows if counts[r["key"]] == 1}

    floats = unique(float_rows)
    return [(q, floats[q["key"]]) for q in unique(int8_rows).values()
            if q["key"] in floats and q["shape"] == floats[q["key"]]["shape"] and q["scale"] is not None]


class _Stats:
    """Streaming sums for one layer's comparison."""

    def __init__(self):
        self.n = 0
        self.sig = self.noise = self.dot = self.qq = self.abs_sum = self.round_noise = 0.0
        self.max_abs = 0.0

    def add(self, f: np.ndarray, q: np.ndarray, rounded: np.ndarray) -> None:
        f, q, rounded = (a.astype(np.float64).ravel() for a in (f, q, rounded))
        d = f - q
        self.n += f.size
        self.sig += float(f @ f)
        self.noise += float(d @ d)
        self.dot += float(f @ q)
        self.qq += float(q @ q)
        self.abs_sum += float(np.abs(d).sum())
        self.max_abs = max(self.max_abs, float(np.abs(d).max()) if d.size else 0.0)
        r = f - rounded
        self.round_noise += float(r @ r)


def sqnr_db(signal: float, noise: float) -> float:
    if noise <= 0:
        return SQNR_CAP_DB
    return min(SQNR_CAP_DB, 10 * math.log10(max(signal, EPS) / noise))


def _dequantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (x.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def _rounding_only(f: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    info = np.iinfo(np.dtype(dtype))
    q = np.clip(np.round(f / np.float32(scale)) + zero_point, info.min, info.max)
    return _dequantize(q, scale, zero_point)


MIN_PAIRED = 0.5  # at least this share of the int8 file's quantised layers must pair up with the reference's


def check_pair(int8_content: bytes, float_content: bytes) -> None:
    """The reference must be a float model with the int8 file's input (H, W, C) and number of outputs.

    Raises:
        MobilekitError: naming what differs.
    """
    from mobilekit.tflite_file import FLOAT_TYPES, TfliteFile

    q, f = TfliteFile(int8_content), TfliteFile(float_content)
    quantized = [t.name for t in f.tensors if t.dtype in ("INT8", "UINT8", "INT16") and t.scale is not None]
    if f.inputs[0].dtype not in FLOAT_TYPES or quantized:
        raise MobilekitError(f"the reference is not a float model (input {f.inputs[0].dtype}, {len(quantized)} "
                             "quantised tensors): give the float file the int8 one came from")
    if tuple(q.inputs[0].shape[1:]) != tuple(f.inputs[0].shape[1:]):
        raise MobilekitError(f"the int8 file takes {list(q.inputs[0].shape[1:])} images, the reference "
                             f"{list(f.inputs[0].shape[1:])}: not the same model")
    q_out, f_out = tuple(q.outputs[0].shape[1:]), tuple(f.outputs[0].shape[1:])
    if q_out != f_out:
        raise MobilekitError(f"the int8 file outputs {list(q_out)}, the reference {list(f_out)} (a different class "
                             "count): not the same model")


def numerics(int8_content: bytes, float_content: bytes, images_float: np.ndarray, same_model: bool = False) -> dict:
    """Per-layer comparison of an int8 .tflite with its float reference on ``images_float`` (N, H, W, C),
    the float model's inputs; the int8 file gets them quantised with its input scale and zero point.

    Returns ``{"layers": [{"name", "op", "sqnr_db", "cosine", "max_abs_err", "mean_abs_err", "scale",
    "zero_point", "rounding_sqnr_db", "rounding_mean_abs_err", "error_vs_rounding", "shape"}, ...],
    "output": {"top1_agreement", "top5_agreement" (float's top-1 within int8's top 5), "kl", "sqnr_db" (the
    last compared layer's), "images"}, "unmatched": [...], "images"}``.

    With ``same_model`` (the command line's files) the pair must be one model: :func:`check_pair`, and at least
    ``MIN_PAIRED`` of the int8 file's quantised layers paired.

    Raises:
        MobilekitError: unloadable files, different input shapes, or no layer in common.
    """
    from mobilekit.app_io import body
    from mobilekit.litert import quantize_input

    int8_content = body(int8_content)  # an app interface (uint8, float32) is not a layer: the body is compared
    if same_model:
        check_pair(int8_content, float_content)
    q_it, f_it = reference_interpreter(int8_content), reference_interpreter(float_content)
    q_in, f_in = q_it.get_input_details()[0], f_it.get_input_details()[0]
    if list(q_in["shape"]) != list(f_in["shape"]):
        raise MobilekitError(f"the int8 file takes {list(q_in['shape'])}, the reference {list(f_in['shape'])}")
    if tuple(images_float.shape[1:]) != tuple(f_in["shape"][1:]):
        raise MobilekitError(f"images of shape {images_float.shape[1:]} do not fit the model input "
                             f"{tuple(f_in['shape'][1:])}")
    q_rows, f_rows = op_outputs(int8_content), op_outputs(float_content)
    pairs = pair(q_rows, f_rows)
    quantized = sum(r["scale"] is not None for r in q_rows)
    if not pairs or (same_model and len(pairs) < MIN_PAIRED * quantized):
        raise MobilekitError(f"only {len(pairs)} of the int8 file's {quantized} quantised layers have a counterpart "
                             "in the reference: not the same model (give the float file this int8 file came from)")
    stats = [_Stats() for _ in pairs]
    agree, agree5, kl = 0, 0, 0.0
    for image in images_float:
        x = image[None].astype(np.float32)
        q_it.set_tensor(q_in["index"], quantize_input(x, q_in))
        f_it.set_tensor(f_in["index"], quantize_input(x, f_in))
        q_it.invoke()
        f_it.invoke()
        for s, (q, fr) in zip(stats, pairs):
            f_val = f_it.get_tensor(fr["tensor"]).astype(np.float32)
            q_val = _dequantize(q_it.get_tensor(q["tensor"]), q["scale"], q["zero_point"])
            s.add(f_val, q_val, _rounding_only(f_val, q["scale"], q["zero_point"], q["dtype"]))
        q_out, f_out = q_it.get_output_details()[0], f_it.get_output_details()[0]
        pq = probabilities_of(q_it.get_tensor(q_out["index"]), q_out)
        pf = probabilities_of(f_it.get_tensor(f_out["index"]), f_out)
        agree += int(np.argmax(pq) == np.argmax(pf))
        agree5 += int(np.argmax(pf) in np.argsort(pq)[-5:])
        kl += float(np.sum(pf * (np.log(pf + EPS) - np.log(pq + EPS))))
    layers = [{"name": q["key"], "op": q["op"], "shape": q["shape"], "sqnr_db": sqnr_db(s.sig, s.noise),
               "cosine": s.dot / math.sqrt(max(s.sig * s.qq, EPS)), "max_abs_err": s.max_abs,
               "mean_abs_err": s.abs_sum / max(s.n, 1), "scale": q["scale"], "zero_point": q["zero_point"],
               "rounding_sqnr_db": sqnr_db(s.sig, s.round_noise),
               "rounding_mean_abs_err": math.sqrt(s.round_noise / max(s.n, 1)),
               "error_vs_rounding": s.noise / s.round_noise if s.round_noise > 0 else None}
              for s, (q, _) in zip(stats, pairs)]
    matched = {q["key"] for q, _ in pairs}
    n = len(images_float)
    return {"images": n, "layers": layers,
            "unmatched": [r["key"] for r in q_rows if r["key"] not in matched and r["scale"] is not None],
            "output": {"top1_agreement": agree / max(n, 1), "top5_agreement": agree5 / max(n, 1),
                       "kl": kl / max(n, 1), "sqnr_db": layers[-1]["sqnr_db"] if layers else None, "images": n},
            "method": "LiteRT reference kernels, all intermediate tensors kept; int8 outputs dequantised and "
                      "compared with the float reference's output of the same Keras layer"}


def probabilities_of(raw: np.ndarray, detail: dict) -> np.ndarray:
    """A graph output as probabilities (dequantised; softmax taken unless it already sums to ~1)."""
    x = raw.astype(np.float32).ravel()
    scale, zero_point = detail["quantization"]
    if scale:
        x = (x - zero_point) * scale
    if np.all(x >= 0) and abs(float(x.sum()) - 1.0) < 0.05:
        return x / max(float(x.sum()), EPS)
    e = np.exp(x - x.max())
    return e / e.sum()


def worst(layers: list[dict], k: int = 5) -> list[dict]:
    """The ``k`` layers with the lowest SQNR (name, op, sqnr_db, error_vs_rounding)."""
    keys = ("name", "op", "sqnr_db", "rounding_sqnr_db", "error_vs_rounding")
    return [{key: r[key] for key in keys} for r in sorted(layers, key=lambda r: r["sqnr_db"])[:k]]


def first_drop(baseline: list[dict], changed: list[dict], db: float = 10.0) -> str | None:
    """The first layer (graph order) whose SQNR fell by more than ``db`` from ``baseline`` to ``changed``."""
    before = {r["name"]: r["sqnr_db"] for r in baseline}
    for r in changed:
        if r["name"] in before and before[r["name"]] - r["sqnr_db"] > db:
            return r["name"]
    return None


def load_images(source: str, input_shape, n: int, seed: int = 0) -> tuple[str, np.ndarray]:
    """(description, float inputs (n, H, W, C)) for ``source``: "fashion-mnist" (the first n test images),
    "photos" (scikit-image's photos and seeded augmented views), or an image folder (its held-out split)."""
    from mobilekit.data import load_fashion_mnist, load_image_folder, to_float

    h, w, c = (int(d) for d in input_shape)
    if h != w:
        raise MobilekitError(f"numerics needs a square input; the model takes {h}x{w}")
    if source == "fashion-mnist":
        ds = load_fashion_mnist(size=h, channels=c, limit_train=1, limit_test=n)
        return f"Fashion-MNIST, first {len(ds.x_test)} test images", to_float(ds.x_test)
    if source == "photos":
        from mobilekit.photos import photo_views

        if c != 3:
            raise MobilekitError(f"the photos are RGB; the model takes {c} channel(s)")
        names, images = photo_views(h, views_per_photo=max(1, math.ceil(n / 15)), seed=seed)
        return f"scikit-image photos, {len(images[:n])} views", to_float(images[:n])
    ds = load_image_folder(source, size=h, channels=c, seed=seed, limit_test=n)
    return f"{source}, {len(ds.x_test)} held-out images", to_float(ds.x_test)
