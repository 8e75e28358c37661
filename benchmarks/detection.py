"""Detectors measured: SqueezeDet on SqueezeNet 1.1 / 1.0 and on ImageNet-pretrained MobileNet v2 / EfficientNet-Lite0,
each built by `mobilekit build` as a user runs it, on two sets.

    python benchmarks/detection.py                          # every detector on both sets (hours on 2 cores)
    python benchmarks/detection.py --only squeezedet1_1 --sets embedded
    python benchmarks/detection.py --epochs 6               # a shorter budget for every build (recorded)

Sets: ``embedded`` (the kit's own: Fashion-MNIST items on scikit-image photos; no --data) and ``shapes`` (made
here from other images: scikit-image's random_shapes, rectangles, circles, triangles and ellipses, laid on crops of
eight photos the embedded set does not use; 1,000 training and 200 test images, written as COCO).

Per build: mAP@0.5 and mAP@[.5:.95] of the Keras float model and of the int8 file (run as an app runs it), params,
the int8 file's size, host batch-1 latency (1 thread, the CPU named), the int8 file's instructions on cortex-a76 and
cortex-a53 (qemu) and the predicted latency on a Snapdragon 845 and 450, and the build's wall time. Writes
benchmarks/results/detection.json; docs/detection.md and the README's table are rendered from it by
benchmarks/docs.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
DETECTORS = {
    "squeezedet1_1": [],
    "squeezedet1_0": ["--backbone", "squeezenet1_0"],
    "mobilenet_v2": ["--backbone", "mobilenet_v2", "--weights", "imagenet"],
    "efficientnet_lite0": ["--backbone", "efficientnet_lite0", "--weights", "imagenet"],
}
SETS = ("embedded", "shapes")
DEVICES = ("snapdragon-845", "snapdragon-450")
SHAPE_PHOTOS = ("cat", "page", "text", "clock", "retina", "stereo_motorcycle", "cell", "colorwheel")
SHAPES_TRAIN, SHAPES_TEST, SIDE = 1000, 200, 128


def _photos() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in SHAPE_PHOTOS:
        image = getattr(skimage.data, name)()
        image = np.asarray(image[0] if isinstance(image, tuple) else image)
        out.append(np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3])
    return out


def shapes_split(folder: Path, split: str, count: int, seed: int = 0):
    """``count`` images of up to three random shapes (scikit-image's random_shapes, no overlap) on photo crops, each
    box the tight box of its shape's pixels: a :class:`mobilekit.detection.formats.DetectionSet`."""
    from skimage.draw import random_shapes

    from mobilekit.detection.embedded import composed_split

    names = ["rectangle", "circle", "triangle", "ellipse"]

    def draw(rng, background):
        drawn, labels = random_shapes((SIDE, SIDE), max_shapes=3, min_shapes=1, min_size=20, max_size=64,
                                      channel_axis=-1, rng=int(rng.integers(2**31)), allow_overlap=False,
                                      intensity_range=((0, 230),))
        painted = (drawn < 255).any(axis=-1)
        boxes, kinds = [], []
        for kind, ((r0, r1), (c0, c1)) in labels:
            region = np.zeros_like(painted)
            region[max(r0, 0):r1 + 1, max(c0, 0):c1 + 1] = True
            mask = painted & region
            if mask.sum() < 16:  # clipped to a sliver by the image's edge
                continue
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            boxes.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
            kinds.append(names.index(kind))
        image = np.where(painted[..., None], drawn, background).astype(np.uint8)
        return image, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(kinds, np.int32)

    return composed_split(folder, split, count, seed, _photos(), draw, names, SIDE)


def make_shapes(root: Path) -> tuple[Path, Path]:
    """The shapes set as two COCO folders under ``root``: (train, test)."""
    from mobilekit.detection.formats import write_detection_set

    out = []
    for split, count in (("train", SHAPES_TRAIN), ("test", SHAPES_TEST)):
        with tempfile.TemporaryDirectory() as work:
            out.append(write_detection_set(shapes_split(Path(work), split, count), root / split, "coco"))
    return out[0], out[1]


def run(detector: str, data: list[str], work: Path, extra: list[str]) -> dict:
    """One build as a user runs it: its command, wall time and the report's numbers."""
    out = work / "build"
    shutil.rmtree(out, ignore_errors=True)
    args = ["build", "--arch", "squeezedet", *DETECTORS[detector], *data, *extra, "--device", ",".join(DEVICES)]
    t0 = time.perf_counter()
    r = subprocess.run([MOBILEKIT, *args, "--out", str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"mobilekit {' '.join(args)} failed: {r.stderr.strip()[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    acc, d, arm = report["accuracy"], report["accuracy"]["detection"], report["arm"]
    return {
        "command": "mobilekit " + " ".join(a if not a.startswith(str(work)) else Path(a).name for a in args),
        "wall_seconds": round(wall, 1),
        "map50": {"keras_float": acc["keras_float"], "tflite_int8": acc["tflite_int8"]},
        "map": {"keras_float": d["keras_float_map"], "tflite_int8": d["map"]},
        "params": report["params"], "macs": report["macs"], "int8_bytes": report["sizes"]["int8_tflite_bytes"],
        "latency_host_ms": round(report["latency"]["median_ms"], 3),
        "instructions": {cpu: next(iter(e["threads"].values()))["instructions"] for cpu, e in arm["emulated"].items()},
        "threads": {cpu: int(next(iter(e["threads"]))) for cpu, e in arm["emulated"].items()},
        "predicted_ms": {name: arm["devices"][name]["predicted_ms"] for name in DEVICES},
        "grid": d["grid"], "sparsity": report["sparsity"]["int8_weights"],
    }


def main(argv=None) -> int:
    from mobilekit.hostinfo import cpu_info

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(DETECTORS), help="comma-separated: " + ", ".join(DETECTORS))
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    p.add_argument("--epochs", type=float, default=None, help="every build's float (fine-tune) epochs; default: the "
                   "build's own")
    p.add_argument("--out", default=str(RESULTS / "detection.json"))
    args = p.parse_args(argv)
    path = Path(args.out)
    result = json.loads(path.read_text()) if path.is_file() else {"rows": {}}
    extra = ["--epochs", f"{args.epochs:g}"] if args.epochs is not None else []
    work = Path(tempfile.mkdtemp(prefix="mobilekit-detection-bench-"))
    try:
        for set_name in args.sets.split(","):
            if set_name not in SETS:
                raise SystemExit(f"unknown set {set_name!r}; sets: {', '.join(SETS)}")
            data = []
            if set_name == "shapes":
                train, test = make_shapes(work / "shapes")
                data = ["--data", str(train), "--test-data", str(test)]
            for detector in args.only.split(","):
                if detector not in DETECTORS:
                    raise SystemExit(f"unknown detector {detector!r}; detectors: {', '.join(DETECTORS)}")
                row = run(detector, data, work, extra)
                row["host"] = cpu_info()
                result["rows"][f"{set_name}/{detector}"] = row
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=1) + "\n")
                print(f"{set_name}/{detector}: mAP@0.5 float {row['map50']['keras_float']:.3f} int8 "
                      f"{row['map50']['tflite_int8']:.3f} in {row['wall_seconds']:.0f} s", flush=True)
            shutil.rmtree(work / "shapes", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def to_markdown(result: dict) -> str:
    """The measured table (docs/detection.md, README), rows in set and detector order."""
    rows = result["rows"]
    if not rows:
        return "Not measured yet.\n"
    host = next(iter(rows.values()))["host"]
    lines = ["| set | detector | mAP@0.5 float / int8 | mAP@[.5:.95] float / int8 | params | int8 KiB | host ms | "
             "a76 / a53 Minstr | SD845 / SD450 ms | build s |", "|---|---|---|---|---:|---:|---:|---|---|---:|"]
    for key in sorted(rows, key=lambda k: (SETS.index(k.split("/")[0]), list(DETECTORS).index(k.split("/")[1]))):
        r = rows[key]
        set_name, detector = key.split("/")
        mf = r["map"]["keras_float"]
        lines.append(
            f"| {set_name} | {detector} | {r['map50']['keras_float']:.3f} / {r['map50']['tflite_int8']:.3f} | "
            f"{'n/a' if mf is None else f'{mf:.3f}'} / {r['map']['tflite_int8']:.3f} | {r['params']:,} | "
            f"{r['int8_bytes'] / 1024:,.0f} | {r['latency_host_ms']:.2f} | "
            f"{r['instructions']['cortex-a76'] / 1e6:.1f} / {r['instructions']['cortex-a53'] / 1e6:.1f} | "
            f"{r['predicted_ms'][DEVICES[0]]:.1f} / {r['predicted_ms'][DEVICES[1]]:.1f} | {r['wall_seconds']:.0f} |")
    commands = sorted({r["command"] for r in rows.values()})
    lines += ["", f"Measured with `python benchmarks/detection.py` on {host['model']} ({host['cpus']} cores; "
              f"{host['summary']}): host latency at batch 1, 1 thread; instructions of the int8 file per invoke "
              "(the device's threads, qemu); predicted latency from the cost model (calibrated on one Pixel 3 pair, int8 not "
              "validated: +-50%). Commands: " + "; ".join(f"`{c}`" for c in commands) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
