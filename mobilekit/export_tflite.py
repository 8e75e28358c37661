"""The export path every float/int8 pair goes through: graph rewrites, then LiteRT conversion.

``mobilekit export tflite`` runs it on an untrained arch (random calibration), for size and latency
checks without training; a build runs it on the trained model with its recipe's calibration.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from mobilekit.rewrites import DEFAULT_REWRITES


def convert_pair(model, calibration: np.ndarray, rewrites=DEFAULT_REWRITES, method: str = "minmax",
                 bias_correction: bool = False, per_tensor_weights: bool = False) -> dict:
    """``{"float": bytes, "int8": bytes, "rewrites": log, "ptq": summary}`` for a float Keras ``model``:
    the named rewrites applied (and checked exact by ``rewrite``), then the float file and the full-int8 file
    (``mobilekit.ptq.convert_ptq`` with ``method`` ranges)."""
    from mobilekit.convert import convert_float
    from mobilekit.ptq import convert_ptq
    from mobilekit.rewrites import rewrite

    export, log = rewrite(model, rewrites)
    int8, summary = convert_ptq(export, calibration, method, bias_correction, per_tensor_weights)
    return {"float": convert_float(export), "int8": int8, "rewrites": log, "ptq": summary}


def random_calibration(input_shape, samples: int = 8, seed: int = 0) -> np.ndarray:
    """Uniform [0, 1) images: the build's input range (pixel / 255) for an untrained model's ranges."""
    return np.random.default_rng(seed).random((samples, *input_shape), np.float32)


def export_untrained(arch: str, out: str, input_size: int = 224, classes: int = 1000, arch_kwargs=None,
                     rewrites=DEFAULT_REWRITES, seed: int = 0) -> dict:
    """Write ``<arch>_float.tflite``, ``<arch>_int8.tflite`` and ``export.json`` for the untrained
    ``arch`` into the folder ``out`` (each file written whole, then renamed); returns export.json's dict.

    Example: ``export_untrained("squeezenet1_1", "out/", input_size=224)``.
    """
    import mobilekit
    from mobilekit._io import check_output_path, ensure_writable_dir, write_bytes_atomic, write_json_atomic
    from mobilekit._tf import keras

    check_output_path(out, "dir", "--out", owned_marker="export.json")  # never into a build or a user's folder
    from mobilekit.tflite_analysis import analyze
    from mobilekit.tflite_file import TfliteFile

    keras.utils.set_random_seed(seed)
    model = mobilekit.create(arch, input_shape=(input_size, input_size, 3), classes=classes, **(arch_kwargs or {}))
    pair = convert_pair(model, random_calibration(model.input_shape[1:], seed=seed), rewrites)
    files = {}
    for kind in ("float", "int8"):
        content = pair[kind]
        tfl = TfliteFile(content)
        files[kind] = {"file": f"{arch}_{kind}.tflite", "bytes": len(content),
                       "sha256": hashlib.sha256(content).hexdigest(), "ops": tfl.op_counts(),
                       "macs": analyze(tfl)["macs"]}
    doc = {"arch": arch, "input_shape": [input_size, input_size, 3], "classes": classes,
           "arch_kwargs": dict(arch_kwargs or {}), "params": model.count_params(),
           "weights": "untrained (seeded), int8 ranges from random images", "seed": seed,
           "rewrites": {"requested": list(rewrites), "log": pair["rewrites"]}, "files": files}
    folder = ensure_writable_dir(out)
    for kind in ("float", "int8"):
        write_bytes_atomic(Path(folder) / files[kind]["file"], pair[kind])
    write_json_atomic(Path(folder) / "export.json", doc)
    return doc
