"""Harness overhead: `mobilekit bench`'s median vs a bare ``invoke()`` loop, same run.

For a small (48x48) and a full-size (224x224) int8 SqueezeNet 1.1, alternate rounds of
the harness (``mobilekit.bench.harness.benchmark``) and of a bare loop that times
``interpreter.invoke()`` with ``time.perf_counter`` and nothing else, and compare the
medians of the round medians. Target: the harness within 2% of the bare loop.

Usage: python benchmarks/harness_overhead.py [--runs 200] [--rounds 6] [--sizes 48,224]
                                            [--tflite FILE ...] [--out PATH]
(--tflite adds existing files, e.g. build/squeezenet1_1/squeezenet1_1.tflite)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def bare_loop_median(content: bytes, runs: int, warmup: int) -> float:
    from mobilekit.litert import make_interpreter, random_inputs

    interpreter = make_interpreter(content)
    for d, value in zip(interpreter.get_input_details(), random_inputs(interpreter)):
        interpreter.set_tensor(d["index"], value)
    for _ in range(warmup):
        interpreter.invoke()
    times = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        interpreter.invoke()
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e3)


def main(argv=None) -> int:
    import mobilekit
    from mobilekit.files import write_json_atomic
    from mobilekit.bench.harness import benchmark
    from mobilekit.convert import convert_int8

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--sizes", default="48,224", help="generated int8 SqueezeNet 1.1 sizes ('' for none)")
    p.add_argument("--tflite", nargs="*", default=[], help="existing .tflite files to include")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "harness_overhead.json"))
    args = p.parse_args(argv)
    cases = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        model = mobilekit.create("squeezenet1_1", input_shape=(size, size, 3), classes=1000)
        x = np.random.default_rng(0).random((4, size, size, 3), np.float32)
        cases.append((f"squeezenet1_1 int8 {size}x{size}", convert_int8(model, x)))
    cases += [(path, Path(path).read_bytes()) for path in args.tflite]
    rows = []
    for label, content in cases:
        harness, bare = [], []
        for r in range(args.rounds):
            pair = [("harness", lambda: benchmark({"m": content}, num_runs=args.runs, warmup_runs=5)["m"]["median_ms"]),
                    ("bare", lambda: bare_loop_median(content, args.runs, 5))]
            for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                (harness if name == "harness" else bare).append(fn())
        h, b = float(np.median(harness)), float(np.median(bare))
        row = {"model": label, "harness_median_ms": h, "bare_median_ms": b,
               "harness_over_bare": h / b, "within_2_percent": abs(h / b - 1) <= 0.02,
               "round_medians_ms": {"harness": harness, "bare": bare}}
        print(f"{row['model']}: harness {h:.4f} ms, bare {b:.4f} ms, ratio {h / b:.4f}", flush=True)
        rows.append(row)
    write_json_atomic(Path(args.out), {"benchmark": "harness_overhead", "runs": args.runs,
                                       "rounds": args.rounds, "rows": rows})
    return 0 if all(r["within_2_percent"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
