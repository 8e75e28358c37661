"""Post-training quantisation options against float and QAT, measured with the numerics debugger.

Part 1, Fashion-MNIST (every registered arch, the default build's float budget at 48x48): one float
training per arch, then int8-ptq with each option (min-max, percentile, MSE ranges; bias correction) and
int8-qat from the same float model; accuracy of each file on the 10,000 test images, and the per-layer
numerics against the float reference on 200 of them.
Part 2, the ImageNet MobileNetV2 (`--weights imagenet`): calibrated on the 15 photos and their mirror
images as the build does, compared with float on 150 augmented views (crops, flips) of the photos.

    python benchmarks/ptq.py                       # both parts (about 30 min on 2 cores)
    python benchmarks/ptq.py --archs squeezenet1_1 --parts fashion

Writes benchmarks/results/ptq.json (and the README's table via benchmarks/docs.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "ptq.json"
OPTIONS = {"minmax": ("minmax", False), "percentile": ("percentile", False), "mse": ("mse", False),
           "minmax+bc": ("minmax", True), "mse+bc": ("mse", True)}
NUMERICS_IMAGES = 200


def _variant(content: bytes, reference: bytes, x_test, y_test, seconds: float) -> dict:
    from mobilekit.bench import evaluate_tflite
    from mobilekit.numerics import numerics, worst

    n = numerics(content, reference, x_test[:NUMERICS_IMAGES])
    return {"accuracy": evaluate_tflite(content, x_test, y_test)["top1"], "output": n["output"],
            "worst_layers": worst(n["layers"], 3), "median_sqnr_db": sorted(r["sqnr_db"] for r in n["layers"])[
                len(n["layers"]) // 2], "convert_seconds": round(seconds, 1)}


def fashion_arch(arch: str, data) -> dict:
    from mobilekit.backend import keras, tf
    from mobilekit.convert import convert_float, convert_int8
    from mobilekit.pipeline import BuildConfig
    from mobilekit.pipeline import stages
    from mobilekit.convert import convert_ptq

    cfg = BuildConfig(arch=arch, recipe="int8-ptq")
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    model = stages.create_model(cfg, data)
    t0 = time.perf_counter()
    float_acc = stages.train_float(cfg, data, model)
    row = {"arch": arch, "float_accuracy": float_acc, "train_seconds": round(time.perf_counter() - t0, 1)}
    calibration = stages.calibration_images(cfg, data)
    reference = convert_float(model)
    row["ptq"] = {}
    for name, (method, bc) in OPTIONS.items():
        t0 = time.perf_counter()
        content, _ = convert_ptq(model, calibration, method, bc)
        row["ptq"][name] = _variant(content, reference, data.x_test, data.ds.y_test, time.perf_counter() - t0)
        print(f"  {arch} int8-ptq {name}: {row['ptq'][name]['accuracy']:.4f} (float {float_acc:.4f})", flush=True)
    qcfg = BuildConfig(arch=arch, recipe="int8-qat")
    t0 = time.perf_counter()
    state = stages.qat(qcfg, data, stages.Trained(model, {}))
    qat_seconds = time.perf_counter() - t0
    from mobilekit.optimize import float_twin

    twin = float_twin(state.model, model)
    content = convert_int8(state.model, calibration)
    row["qat"] = _variant(content, convert_float(twin) if twin is not None else reference, data.x_test,
                          data.ds.y_test, qat_seconds)
    row["qat"]["keras_qat_accuracy"] = state.accuracy["keras_qat"]
    print(f"  {arch} int8-qat: {row['qat']['accuracy']:.4f}", flush=True)
    return row


def fashion(archs: list[str], result: dict, save) -> dict:
    """Every arch in turn, saved after each (a rerun skips the archs already in the file)."""
    from mobilekit.pipeline import BuildConfig
    from mobilekit.pipeline import stages
    from mobilekit.progress import console

    data = stages.load_data(BuildConfig(), console)
    part = result.get("fashion") or {}
    part.update({"dataset": "fashion-mnist", "input_size": 48, "epochs": 1.5, "qat_epochs": 0.25,
                 "numerics_images": NUMERICS_IMAGES})
    done = {r["arch"]: r for r in part.get("rows", [])}
    for arch in archs:
        if arch not in done:
            done[arch] = fashion_arch(arch, data)
            part["rows"] = [done[a] for a in archs if a in done]
            result["fashion"] = part
            save()
    part["rows"] = [done[a] for a in archs]
    return part


def imagenet(views: int = 10) -> dict:
    import numpy as np

    from mobilekit.convert import convert_float
    from mobilekit.weights import imagenet_mobilenet_v2
    from mobilekit.data import to_float
    from mobilekit.numerics import numerics, worst
    from mobilekit.photos import load_photos, photo_views
    from mobilekit.convert import convert_ptq

    model = imagenet_mobilenet_v2(input_shape=(224, 224, 3))
    _, photos = load_photos(224)
    calibration = to_float(np.concatenate([photos, photos[:, :, ::-1]]))  # as the build calibrates
    names, images = photo_views(224, views_per_photo=views)
    inputs = to_float(images)
    reference = convert_float(model)
    out = {"calibration": "15 photos and their mirror images (the build's)", "inputs": len(names),
           "inputs_source": f"scikit-image's 15 photos x {views} views: centre crop, its mirror, random crops "
                            "(8-100% area, half mirrored)", "options": {}}
    for name, (method, bc) in OPTIONS.items():
        t0 = time.perf_counter()
        content, _ = convert_ptq(model, calibration, method, bc)
        n = numerics(content, reference, inputs)
        out["options"][name] = {"output": n["output"], "worst_layers": worst(n["layers"], 3),
                                "seconds": round(time.perf_counter() - t0, 1)}
        print(f"  mobilenet_v2 imagenet {name}: top-1 agreement {n['output']['top1_agreement']:.3f}", flush=True)
    return out


def main(argv=None) -> int:
    from mobilekit import archs as registry
    from mobilekit.hostinfo import cpu_info

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default=",".join(registry.list_archs()))
    p.add_argument("--parts", default="fashion,imagenet")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    path = Path(args.out)
    result = json.loads(path.read_text()) if path.is_file() else {}
    result["host"] = cpu_info()
    def save():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")

    for part in args.parts.split(","):
        t0 = time.perf_counter()
        result[part] = fashion(args.archs.split(","), result, save) if part == "fashion" else imagenet()
        result[part]["wall_seconds"] = round(time.perf_counter() - t0, 1)
        save()
        print(f"{part}: done in {result[part]['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
