"""Keras -> .tflite: full-integer int8 (int8 input and output) and float, at batch 1.

Models are exported through a concrete function with a fixed batch of 1 (the
phone's batch): a dynamic batch makes Keras Reshape layers emit SHAPE /
STRIDED_SLICE / PACK ops that split XNNPACK's partition.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from mobilekit._tf import keras, quiet_native_stderr, tf
from mobilekit.errors import MobilekitError
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


def int8_converter(model, representative, batch_size: int = 1, per_tensor_weights: bool = False):
    """The TFLiteConverter set up for full-int8 (int8 input and output) with ``representative`` as the
    calibration images (mobilekit.ptq runs its calibrate and quantize steps apart)."""
    samples = np.asarray(representative, np.float32)

    def gen():
        for i in range(len(samples)):
            yield [samples[i:i + 1]]

    converter = _converter(model, batch_size)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
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
