"""`mobilekit build --weights imagenet` without data: ImageNet's own model to a verified int8 .tflite.

The zero-epoch case of the build: the weights are ported (``mobilekit.weights``), nothing is trained,
the activation ranges are calibrated on real photos (scikit-image's, ``mobilekit.photos``, plus their
mirror images), and the float Keras model and the int8 file are compared photo by photo: top-1 and top-5
classes, whether they agree, and whether the photos with a known subject (a cat, an espresso) land in its
classes. With data, the same weights start a transfer build (``mobilekit.pipeline.transfer``).
"""

from __future__ import annotations

import numpy as np


def _top5(probs: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-probs, kind="stable")[:5]]


def compare_on_photos(keras_model, int8_bytes: bytes, names: list[str], images: np.ndarray) -> dict:
    """Per-photo float vs int8 top-5, their top-1 agreement, and the known-subject checks."""
    from mobilekit.litert import make_interpreter, quantize_input
    from mobilekit.data import to_float
    from mobilekit.photos import EXPECTED_CLASSES

    x = to_float(images)
    float_probs = keras_model.predict(x, batch_size=8, verbose=0)
    interpreter = make_interpreter(int8_bytes)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    per_photo = {}
    for i, name in enumerate(names):
        interpreter.set_tensor(inp["index"], quantize_input(x[i:i + 1], inp))
        interpreter.invoke()
        q = interpreter.get_tensor(out["index"])[0].astype(np.float32)
        int8_probs = (q - out["quantization"][1]) * out["quantization"][0]
        entry = {"float_top5": _top5(float_probs[i]), "int8_top5": _top5(int8_probs),
                 "float_top1_prob": float(float_probs[i].max()), "int8_top1_prob": float(int8_probs.max())}
        entry["agree"] = entry["float_top5"][0] == entry["int8_top5"][0]
        if name in EXPECTED_CLASSES:
            entry["expected"] = list(EXPECTED_CLASSES[name])
            entry["float_ok"] = entry["float_top5"][0] in EXPECTED_CLASSES[name]
            entry["int8_ok"] = entry["int8_top5"][0] in EXPECTED_CLASSES[name]
        per_photo[name] = entry
    agree = sum(e["agree"] for e in per_photo.values())
    return {"photos": len(names), "top1_agreement": agree / len(names), "per_photo": per_photo,
            "expected_ok": all(e.get("int8_ok", True) and e.get("float_ok", True)
                               for e in per_photo.values())}
