"""Peers side by side: the same Keras model as LiteRT float/int8 and onnxruntime float/QDQ int8.

onnxruntime, onnx and tf2onnx are the optional extra ``pip install 'mobilekit[peers]'``.
The ONNX graph comes from tf2onnx (opset 17, batch fixed to 1); the int8 ONNX is
onnxruntime's static QDQ quantization (int8 activations and per-channel int8 weights),
calibrated on the same images as the int8 .tflite.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mobilekit.errors import MobilekitError

PEERS = ("onnxruntime",)
_INSTALL = "pip install 'mobilekit[peers]' (onnxruntime, onnx, tf2onnx)"


def require_peers() -> None:
    """Raise a one-line MobilekitError naming the extra when a peer package is missing."""
    import importlib.util

    missing = []
    for module in ("onnxruntime", "onnx", "tf2onnx"):  # found, not imported: tf2onnx imports TensorFlow
        try:
            found = sys.modules[module] is not None if module in sys.modules else \
                importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        raise MobilekitError(f"--compare onnxruntime needs {', '.join(missing)}: {_INSTALL}")


def check_onnx(path: str, content: bytes) -> dict:
    """Parse and check an ONNX file in Python; its inputs/outputs for the report."""
    require_peers()
    import onnx

    try:
        model = onnx.load_model_from_string(content)
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises DecodeError, ValidationError, ...
        raise MobilekitError(f"{path}: not a valid ONNX model ({type(e).__name__})") from None

    def io(values):
        out = []
        for v in values:
            t = v.type.tensor_type
            out.append({"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                        "shape": [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim],
                        "scale": None, "zero_point": None})
        return out

    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"inputs": io(model.graph.input), "outputs": io(model.graph.output), "ops": dict(sorted(ops.items()))}


def export_peers(arch: str, size: int, classes: int, out_dir: Path) -> list[str]:
    """Write <arch>_{float,int8}.tflite and <arch>_{float,int8_qdq}.onnx for one Keras model."""
    require_peers()
    from mobilekit.backend import quiet_native_stderr, tf

    with quiet_native_stderr():
        import tf2onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from mobilekit import archs
    from mobilekit.convert import convert_float, convert_int8
    from mobilekit.data import to_float
    from mobilekit.photos import load_photos

    model = archs.create(arch, input_shape=(size, size, 3), classes=classes)
    _, photos = load_photos(size)
    calibration = to_float(photos)
    paths = {f"{arch}_float.tflite": convert_float(model), f"{arch}_int8.tflite": convert_int8(model, calibration)}
    for name, content in paths.items():
        (out_dir / name).write_bytes(content)
    spec = (tf.TensorSpec((1, size, size, 3), tf.float32, name="input"),)
    with quiet_native_stderr():
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    float_onnx = out_dir / f"{arch}_float.onnx"
    float_onnx.write_bytes(proto.SerializeToString())
    input_name = proto.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration[i:i + 1].astype(np.float32) for i in range(len(calibration)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    int8_onnx = out_dir / f"{arch}_int8_qdq.onnx"
    quantize_static(str(float_onnx), str(int8_onnx), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    return [str(out_dir / name) for name in paths] + [str(float_onnx), str(int8_onnx)]
