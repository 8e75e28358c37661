"""Where the default build's time goes, before and after the training-speed changes, in one run.

    python benchmarks/build_speed.py [--repeats 2] [--out benchmarks/results/build_speed.json]

Runs ``mobilekit build --arch squeezenet`` ``--repeats`` times per variant, each in a fresh process, alternating:
"before" creates the optimizer and metric variables lazily in the first training step (Keras' way:
each stage's training function is then traced twice), "after" creates them first (mobilekit's
``_create_variables``: traced once). Records per stage the median seconds, the report's throughput
(training images/s after the first step, first-step seconds, evaluation images/s), the int8 accuracy
and sha256 (the bytes must not change). Also probes XLA (``jit_compile``) on 60 float training steps,
with and without, in the same run. The host is noisy (a 2-core VM): compare within this file only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


_CHILD = """
import json, sys, time
from mobilekit.pipeline import BuildConfig, build, training
if sys.argv[1] == "before":
    training._create_variables = lambda *a, **k: None
t0 = time.perf_counter()
report = build(BuildConfig(arch="squeezenet", out=sys.argv[2]))
print(json.dumps({"wall_s": round(time.perf_counter() - t0, 1), "stage_seconds": report["stage_seconds"],
                  "throughput": report["throughput"], "int8_accuracy": report["accuracy"]["tflite_int8"],
                  "sha256": report["sha256"]}))
"""


def run_build(variant: str, out: Path) -> dict:
    """One default build in a fresh process (no trace or autograph cache shared between runs)."""
    import json
    import subprocess

    r = subprocess.run([sys.executable, "-c", _CHILD, variant, str(out)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"the {variant} build failed: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def xla_probe(steps: int = 60) -> dict:
    """Float training images/s of the default model with and without XLA, alternating, same data."""
    import mobilekit
    from mobilekit.backend import keras
    from mobilekit.data import load_fashion_mnist
    from mobilekit.pipeline import BuildConfig
    from mobilekit.pipeline.config import arch_kwargs
    from mobilekit.tasks.classification import train_dataset

    cfg = BuildConfig()
    ds = load_fashion_mnist(cfg.input_size, 3)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    for jit in ("off", "on", "off", "on"):
        keras.utils.set_random_seed(0)
        model = mobilekit.create(cfg.arch, input_shape=ds.input_shape, classes=10, **arch_kwargs(cfg.arch, None))
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"],
                      jit_compile=jit == "on")
        data = train_dataset(ds.x_train, ds.y_train, cfg, 0)
        model.fit(data, epochs=1, steps_per_epoch=1, verbose=0)  # trace (and XLA compile)
        t0 = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
        rates[jit].append(steps * cfg.batch_size / (time.perf_counter() - t0))
    return {"steps": steps, "images_per_s": {k: round(statistics.median(v), 1) for k, v in rates.items()}}


def median_stages(runs: list[dict]) -> dict:
    stages = runs[0]["stage_seconds"]
    out = {"stage_seconds": {k: round(statistics.median(r["stage_seconds"][k] for r in runs), 2) for k in stages},
           "wall_s": round(statistics.median(r["wall_s"] for r in runs), 1), "throughput": {}}
    for stage, first in runs[0]["throughput"].items():
        out["throughput"][stage] = {key: round(statistics.median(r["throughput"][stage][key] for r in runs), 3)
                                    for key in first}
    return out


def main(argv=None) -> int:
    from mobilekit.files import write_json_atomic
    from mobilekit.hostinfo import cpu_info

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "build_speed.json"))
    args = p.parse_args(argv)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="mobilekit-build-speed-") as d:
        for i in range(args.repeats):
            for variant in ("before", "after"):
                runs[variant].append(run_build(variant, Path(d) / f"{variant}{i}"))
                r = runs[variant][-1]
                print(f"{variant} #{i + 1}: {r['wall_s']} s, int8 {r['int8_accuracy']:.2%}, {r['sha256'][:8]}",
                      flush=True)
    result = {"benchmark": "build_speed", "command": "mobilekit build --arch squeezenet", "host": cpu_info(),
              "repeats": args.repeats, "runs": runs,
              "median": {k: median_stages(v) for k, v in runs.items()},
              "same_bytes": len({r["sha256"] for v in runs.values() for r in v}) == 1,
              "xla": xla_probe()}
    write_json_atomic(args.out, result)
    print(f"median wall: before {result['median']['before']['wall_s']} s, after {result['median']['after']['wall_s']} s; "
          f"same bytes: {result['same_bytes']}; XLA images/s {result['xla']['images_per_s']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
