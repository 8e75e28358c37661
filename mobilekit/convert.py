"""Keras -> .tflite, the one module for it: float and full-integer int8 (int8 input and output) at batch 1,
post-training range methods and bias correction around the converter, and the export path every float/int8
pair goes through (graph rewrites, then conversion).

Models are exported through a concrete function with a fixed batch of 1 (the
phone's batch): a dynamic batch makes Keras Reshape layers emit SHAPE /
STRIDED_SLICE / PACK ops that split XNNPACK's partition. ``mobilekit export tflite`` runs the export path on
an untrained arch (random calibration), for size and latency checks without training; a build runs it on the
trained model with its recipe's calibration. The range methods themselves (percentile, MSE, bias correction
on the flatbuffer) are ``mobilekit.ptq``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import numpy as np

from mobilekit.backend import keras, quiet_native_stderr, tf
from mobilekit.errors import MobilekitError
from mobilekit.rewrites import DEFAULT_REWRITES
from mobilekit.tflite_file import TfliteFile


def _converter(model, batch_size: int = 1):
    if not isinstance(model, keras.Model):
        raise MobilekitError(f"convert expects a tf_keras.Model; received {type(model).__name__}")
    spec = tf.TensorSpec([batch_size, *model.input_shape[1:]], tf.float32, name="input")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    # No trackable object: with one the converter takes the SavedModel export
    # path, 10x slower (16 s vs 1.3 s float SqueezeNet, measured) for the same
    # outputs; TF calls the frozen-graph path deprecated and warns, hidden here.
    # The caller keeps ``model`` alive, so the captured variables stay valid.
    with quiet_native_stderr():
        return tf.lite.TFLiteConverter.from_concrete_functions([fn])


def convert_float(model, batch_size: int = 1) -> bytes:
    """A float32 .tflite of ``model`` (no optimizations), as bytes."""
    with quiet_native_stderr():
        return _converter(model, batch_size).convert()


def full_int8(converter, representative, output_type=None):
    """``converter`` set up for full-int8: int8 ops and input, ``representative`` (float images) calibrating the
    activation ranges one at a time, int8 outputs unless ``output_type`` says otherwise (a detector's float
    post-processing outputs)."""
    samples = np.asarray(representative, np.float32)

    def gen():
        for i in range(len(samples)):
            yield [samples[i:i + 1]]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8 if output_type is None else output_type
    return converter


def int8_converter(model, representative, batch_size: int = 1, per_tensor_weights: bool = False):
    """The TFLiteConverter set up for full-int8 (int8 input and output) with ``representative`` as the
    calibration images (mobilekit.ptq runs its calibrate and quantize steps apart)."""
    converter = full_int8(_converter(model, batch_size), representative)
    if per_tensor_weights:
        converter._experimental_disable_per_channel = True  # the converter's only switch for it
    return converter


def convert_int8(model, representative: Iterable[np.ndarray] | np.ndarray, batch_size: int = 1,
                 verify: bool = True, per_tensor_weights: bool = False) -> bytes:
    """A full-integer int8 .tflite of ``model`` with int8 input and output.

    Example: ``data = convert_int8(qat_model, x_calib[:200])``.

    Args:
        model: a float or QAT ``tf_keras.Model``.
        representative: float inputs (N, H, W, C) used to calibrate activation
            ranges (QAT models carry their own ranges; the converter still asks).
        batch_size: the fixed batch of the exported graph.
        verify: read the result back and raise if any float tensor or op remains.
        per_tensor_weights: one scale per weight tensor instead of per output channel, so
            that clustered weights keep at most one int8 value per cluster in the file.

    Raises:
        MobilekitError: ``verify`` found float tensors or ops (listed).
    """
    converter = int8_converter(model, representative, batch_size, per_tensor_weights)
    with quiet_native_stderr():
        content = converter.convert()
    if verify:
        problems = TfliteFile(content).float_problems()
        if problems:
            raise MobilekitError("int8 conversion left float in the model: " + "; ".join(problems[:5])
                                 + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
    return content


def calibrated(keras_model, calibration: np.ndarray) -> bytes:
    """The float .tflite with the calibration's min/max per activation, as the converter makes it."""
    converter = int8_converter(keras_model, calibration)
    converter._experimental_calibrate_only = True  # the converter's own first step, stopped there
    with quiet_native_stderr():
        return converter.convert()


def quantize(calibrated_model: bytes, per_tensor_weights: bool = False) -> bytes:
    """The converter's second step: the MLIR quantizer on a calibrated model, int8 input and output."""
    from tensorflow.lite.python import convert as tfl_convert

    with quiet_native_stderr():
        return tfl_convert.mlir_quantize(calibrated_model, per_tensor_weights, input_data_type=tf.int8,
                                         output_data_type=tf.int8)


def convert_ptq(keras_model, calibration: np.ndarray, method: str = "minmax", bias_correction: bool = False,
                per_tensor_weights: bool = False) -> tuple[bytes, dict]:
    """Full-int8 .tflite of a float Keras model with the chosen range method and bias correction; returns
    (file, what was done)."""
    from mobilekit.ptq import bias_correct, set_ranges

    if method == "minmax" and not bias_correction:  # the converter's own path, byte for byte
        return convert_int8(keras_model, calibration, per_tensor_weights=per_tensor_weights), {
            "calibration": method, "bias_correction": None}
    cal = calibrated(keras_model, calibration)
    if method == "minmax":
        content, summary = convert_int8(keras_model, calibration, per_tensor_weights=per_tensor_weights), {}
    else:
        ranged, summary = set_ranges(cal, method, calibration)
        content = quantize(ranged, per_tensor_weights)
    done = {"calibration": method, "ranges": summary, "bias_correction": None}
    if bias_correction:
        content, done["bias_correction"] = bias_correct(content, cal, calibration)
    problems = TfliteFile(content).float_problems()
    if problems:
        raise MobilekitError("int8 conversion left float in the model: " + "; ".join(problems[:5]))
    return content, done


def convert_pair(model, calibration: np.ndarray, rewrites=DEFAULT_REWRITES, method: str = "minmax",
                 bias_correction: bool = False, per_tensor_weights: bool = False) -> dict:
    """``{"float": bytes, "int8": bytes, "rewrites": log, "ptq": summary}`` for a float Keras ``model``:
    the named rewrites applied (and checked exact by ``rewrite``), then the float file and the full-int8 file
    (:func:`convert_ptq` with ``method`` ranges)."""
    from mobilekit.rewrites import rewrite

    export, log = rewrite(model, rewrites)
    int8, summary = convert_ptq(export, calibration, method, bias_correction, per_tensor_weights)
    return {"float": convert_float(export), "int8": int8, "rewrites": log, "ptq": summary}


def random_calibration(input_shape, samples: int = 8, seed: int = 0) -> np.ndarray:
    """Uniform [0, 1) images: the build's input range (pixel / 255) for an untrained model's ranges."""
    return np.random.default_rng(seed).random((samples, *input_shape), np.float32)


def export_untrained(arch: str, out: str, input_size: int = 224, classes: int = 1000, arch_kwargs=None,
                     rewrites=DEFAULT_REWRITES, seed: int = 0, io: str = "uint8") -> dict:
    """Write ``<arch>_float.tflite``, ``<arch>_int8.tflite`` (with the app interface ``io``,
    mobilekit.app_io) and ``export.json`` for the untrained ``arch`` into the folder ``out`` (each file written
    whole, then renamed); returns export.json's dict.

    Example: ``export_untrained("squeezenet1_1", "out/", input_size=224)``.
    """
    import mobilekit
    from mobilekit.files import check_output_path, ensure_writable_dir, write_bytes_atomic, write_json_atomic

    check_output_path(out, "dir", "--out", owned_marker="export.json")  # never into a build or a user's folder
    from mobilekit.complexity import analyze
    from mobilekit.tflite_file import TfliteFile

    keras.utils.set_random_seed(seed)
    model = mobilekit.create(arch, input_shape=(input_size, input_size, 3), classes=classes, **(arch_kwargs or {}))
    pair = convert_pair(model, random_calibration(model.input_shape[1:], seed=seed), rewrites)
    from mobilekit.app_io import with_io
    from mobilekit.app_metadata import image_classifier
    from mobilekit.data import OFFSET, SCALE

    pair["int8"] = with_io(pair["int8"], io, pixels=(SCALE, OFFSET))
    files = {}
    for kind in ("float", "int8"):
        pair[kind] = content = image_classifier(  # random calibration images are pixel / 255, the build's input
            pair[kind], name=arch,
            description=f"{arch} image classifier ({kind}), untrained (seeded), {classes} classes, no labels",
            preprocessing={"scale": SCALE, "offset": OFFSET}, labels=None)
        tfl = TfliteFile(content)
        files[kind] = {"file": f"{arch}_{kind}.tflite", "bytes": len(content),
                       "sha256": hashlib.sha256(content).hexdigest(), "ops": tfl.op_counts(),
                       "macs": analyze(tfl)["macs"]}
    doc = {"arch": arch, "input_shape": [input_size, input_size, 3], "classes": classes, "io": io,
           "arch_kwargs": dict(arch_kwargs or {}), "params": model.count_params(),
           "weights": "untrained (seeded), int8 ranges from random images", "seed": seed,
           "rewrites": {"requested": list(rewrites), "log": pair["rewrites"]}, "files": files}
    folder = ensure_writable_dir(out)
    for kind in ("float", "int8"):
        write_bytes_atomic(Path(folder) / files[kind]["file"], pair[kind])
    write_json_atomic(Path(folder) / "export.json", doc)
    return doc
