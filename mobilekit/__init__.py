"""mobilekit: architecture name + images -> small, fast, verified int8 .tflite.

The public API is small; TensorFlow is imported only when a function needs it.

Example::

    import mobilekit
    model = mobilekit.create("squeezenet1_1", input_shape=(64, 64, 3), classes=10)
"""

from mobilekit.archs import create, list_archs
from mobilekit.errors import MobilekitError

__all__ = ["create", "list_archs", "build", "BuildConfig", "convert_int8", "convert_float",
           "prune", "quantize_aware", "evaluate_tflite", "measure_latency", "TfliteFile",
           "MobilekitError"]

_LAZY = {
    "build": "mobilekit.pipeline", "BuildConfig": "mobilekit.pipeline",
    "convert_int8": "mobilekit.convert", "convert_float": "mobilekit.convert",
    "prune": "mobilekit.optimize", "quantize_aware": "mobilekit.optimize",
    "evaluate_tflite": "mobilekit.bench", "measure_latency": "mobilekit.bench",
    "TfliteFile": "mobilekit.tflite_file",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mobilekit' has no attribute {name!r}")
