"""What a build writes and how its report reads the produced files: sizes, I/O quantisation, what
survived per layer, versions; every artifact written atomically (temp file + rename).
"""

from __future__ import annotations

import gzip
import hashlib
import platform
import time
from pathlib import Path

import numpy as np

from mobilekit.files import staged_dir, write_bytes_atomic, write_json_atomic, write_text_atomic


def versions() -> dict:
    """Versions of the stack that made the file (report.json ``versions``)."""
    from importlib.metadata import version

    import tensorflow_model_optimization as tfmot_pkg

    from mobilekit.backend import keras, tf

    return {"mobilekit": version("mobilekit"), "tensorflow": tf.__version__,
            "tf_keras": keras.__version__, "tfmot": tfmot_pkg.__version__,
            "ai_edge_litert": version("ai-edge-litert"), "numpy": np.__version__,
            "python": platform.python_version()}


def survived(per_layer: dict, masks: dict, labels: dict) -> dict:
    """What the Keras model held (zeros, cluster values) against what the .tflite stores, per layer.

    Adds ``keras_zeros`` / ``keras_values`` to each ``per_layer`` entry and returns the layers
    that lost sparsity (fewer zeros in the file) or clusters, per tensor and per output channel.
    """
    lost_sparsity, lost_tensor, lost_channel = [], [], []
    for name, entry in per_layer.items():
        if name in masks:
            entry["keras_zeros"] = int(masks[name].size - np.count_nonzero(masks[name]))
            if entry["zeros"] < entry["keras_zeros"]:
                lost_sparsity.append(name)
        if name in labels:
            entry["keras_values"] = int(labels[name].max()) + 1 + int((labels[name] < 0).any())
            if entry["distinct_values"] > entry["keras_values"]:
                lost_tensor.append(name)
            if entry["max_distinct_per_channel"] > entry["keras_values"]:
                lost_channel.append(name)
    return {"lost_sparsity": lost_sparsity, "clusters_lost_per_tensor": lost_tensor,
            "clusters_lost_per_channel": lost_channel,
            "note": "per tensor needs per-tensor weight scales; QAT'd files keep tfmot's per-channel scales "
                    "(docs/compression-recipes.md)"}


def file_fields(tfl, float_bytes: bytes, int8_bytes: bytes) -> dict:
    """report.json fields read from the converted files: I/O quantization, sizes, ops, sha256.

    ``sizes.bits_per_param`` is the transmitted cost: 8 x gzip'd .tflite bytes (the whole file)
    per conv / fully-connected weight and bias stored in it.
    """
    def io(t):  # a float32 interface has no scale: the app's values go in and come out as they are
        quantized = t.scale is not None and t.scale.size == 1
        return {"dtype": t.dtype.lower(), "shape": list(t.shape), "scale": float(t.scale[0]) if quantized else None,
                "zero_point": int(t.zero_point[0]) if quantized else None}

    from mobilekit.data import OFFSET, SCALE, is_plain_pixel

    gzip_bytes = len(gzip.compress(int8_bytes, 9, mtime=0))
    params = tfl.weight_params()
    q_in = io(tfl.inputs[0])
    # does the app's int8 input reduce to pixel - 128 for every pixel value? its uint8 input to the pixel?
    if q_in["dtype"] in ("int8", "uint8"):
        q_in["pixel_minus_128_exact" if q_in["dtype"] == "int8" else "pixel_exact"] = is_plain_pixel(
            SCALE, OFFSET, q_in["scale"], q_in["zero_point"], q_in["dtype"])
    return {"quantization": {"input": q_in, "output": io(tfl.outputs[0])},
            "sizes": {"float_tflite_bytes": len(float_bytes), "int8_tflite_bytes": len(int8_bytes),
                      "int8_gzip_bytes": gzip_bytes, "weight_params": params,
                      "bits_per_param": 8 * gzip_bytes / params if params else None},
            "ops": tfl.op_counts(), "sha256": hashlib.sha256(int8_bytes).hexdigest()}


def write_artifacts(out_dir: Path, report, int8_bytes: bytes, float_bytes: bytes,
                    app_files: dict[str, tuple[str, bytes]], evaluation_files: dict[str, tuple[str, bytes]]) -> dict:
    """``<arch>.tflite``, ``<arch>_float.tflite`` (its float reference for `mobilekit numerics`), the task's files
    for the app (``{report key: (file name, bytes)}``: labels.txt), report.md and report.json (a
    mobilekit.schema.BuildReport) and the evaluation's files (confusion.png), written into a staging sibling of
    ``out_dir`` that then replaces it whole; returns report.json's dict."""
    from mobilekit.report import to_markdown

    t0 = time.perf_counter()
    name = report.arch
    files = {"tflite": f"{name}.tflite", "float_tflite": f"{name}_float.tflite",
             **{k: n for k, (n, _) in app_files.items()}, "report_json": "report.json", "report_md": "report.md",
             **{k: n for k, (n, _) in evaluation_files.items()}}
    seconds = dict(report.stage_seconds)
    with staged_dir(out_dir) as stage:
        write_bytes_atomic(stage / files["tflite"], int8_bytes)
        write_bytes_atomic(stage / files["float_tflite"], float_bytes)
        for file_name, content in [*app_files.values(), *evaluation_files.values()]:
            write_bytes_atomic(stage / file_name, content)
        seconds["write"] = round(time.perf_counter() - t0, 2)
        seconds["total"] = round(sum(seconds.values()), 2)
        final = report.replace(files=files, stage_seconds=seconds).to_dict()
        write_text_atomic(stage / "report.md", to_markdown(final))
        write_json_atomic(stage / "report.json", final)
    return final


def numerics_section(int8_bytes: bytes, float_bytes: bytes, images) -> dict:
    """report.json ``numerics``: int8 vs its float reference on ``images`` (final agreement, 5 worst layers)."""
    from mobilekit.numerics import numerics, worst

    doc = numerics(int8_bytes, float_bytes, images)
    return {"images": doc["images"], "output": doc["output"], "worst_layers": worst(doc["layers"]),
            "layers_compared": len(doc["layers"]),
            "layers_sqnr_db": {r["name"]: round(r["sqnr_db"], 2) for r in doc["layers"]},  # `mobilekit view`
            "command": "mobilekit numerics <arch>.tflite --reference <arch>_float.tflite"}
