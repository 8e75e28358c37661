"""Zoo benchmark: every registered arch at 224x224, 1,000 classes, float vs int8 in LiteRT.

For each arch (paper configuration, untrained weights: latency does not depend on the
values): params, MACs, float32 and full-int8 .tflite sizes, and batch-1 latency of
both files with XNNPACK at 1 thread. The two files of an arch are timed in
alternating rounds in the same process, so their ratio is fair on a noisy host; the
int8 file is calibrated on scikit-image's photos. The stem (input -> first ReLU) is
timed on its own too, float and int8, because XNNPACK's int8 kernels for a 3-channel
input conv are what make int8 slower than float on an x86 host without VNNI
(docs/zoo-latency.md).

Usage: python benchmarks/zoo.py [--archs a,b] [--size 224] [--runs 50] [--rounds 5]
                                [--out benchmarks/results/zoo.json]
Writes the JSON and a Markdown table next to it (zoo.md, the README's table).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

from mobilekit.hostinfo import cpu_info


def measure(contents: dict[str, bytes], runs: int, rounds: int) -> dict[str, dict]:
    """Median/p90 batch-1 latency (ms) per file: the bench harness's interleaved timing (one run of each
    file per round, alternating which goes first), ``runs * rounds`` timed runs each."""
    from mobilekit.bench.harness import benchmark

    timed = benchmark(contents, num_runs=runs * rounds, warmup_runs=5, num_threads=1)
    return {k: {"median_ms": v["median_ms"], "p90_ms": v["p90_ms"], "runs": v["runs"]} for k, v in timed.items()}


def bench_arch(arch: str, size: int, runs: int, rounds: int, calibration: np.ndarray) -> dict:
    import mobilekit
    from mobilekit.analysis import complexity
    from mobilekit.bench import delegate_partitions, make_interpreter
    from mobilekit.convert import convert_float, convert_int8

    from mobilekit._tf import keras

    model = mobilekit.create(arch, input_shape=(size, size, 3), classes=1000)
    info = complexity(model)
    stem_end = next(layer for layer in model.layers if type(layer).__name__ == "ReLU")
    stem = keras.Model(model.input, stem_end.output)
    files = {"float": convert_float(model), "int8": convert_int8(model, calibration),
             "stem_float": convert_float(stem), "stem_int8": convert_int8(stem, calibration)}
    latency = {k: v["median_ms"] for k, v in measure(files, runs, rounds).items()}
    partitions, outside = delegate_partitions(make_interpreter(files["int8"]))
    first = next(layer for layer in model.layers if layer.weights)
    return {"arch": arch, "input": size, "params": info["params"], "macs": info["macs"],
            "float_bytes": len(files["float"]), "int8_bytes": len(files["int8"]),
            "float_ms": latency["float"], "int8_ms": latency["int8"],
            "int8_over_float": latency["int8"] / latency["float"],
            "stem": {"layer": first.name, "kernel": list(first.kernel.shape),
                     "float_ms": latency["stem_float"], "int8_ms": latency["stem_int8"]},
            "int8_over_float_without_stem": (latency["int8"] - latency["stem_int8"])
                                            / (latency["float"] - latency["stem_float"]),
            "int8_xnnpack_partitions": partitions, "int8_ops_outside_xnnpack": outside}


def to_markdown(rows: list[dict]) -> str:
    lines = ["| arch | params | MMACs | float KiB | int8 KiB | float ms | int8 ms | int8/float "
             "| stem float / int8 ms | int8/float without stem |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['params']:,} | {r['macs'] / 1e6:,.1f} | "
                     f"{r['float_bytes'] / 1024:,.0f} | {r['int8_bytes'] / 1024:,.0f} | "
                     f"{r['float_ms']:.2f} | {r['int8_ms']:.2f} | {r['int8_over_float']:.2f} | "
                     f"{r['stem']['float_ms']:.2f} / {r['stem']['int8_ms']:.2f} | "
                     f"{r['int8_over_float_without_stem']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import mobilekit
    from mobilekit._io import write_json_atomic, write_text_atomic
    from mobilekit.data import to_float
    from mobilekit.photos import load_photos

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default=",".join(mobilekit.list_archs()))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--runs", type=int, default=50, help="timed runs per round and file")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "zoo.json"))
    args = p.parse_args(argv)
    archs = [a for a in args.archs.split(",") if a]
    unknown = sorted(set(archs) - set(mobilekit.list_archs()))
    if unknown:
        p.error(f"unknown arch {unknown[0]!r}; valid: {', '.join(mobilekit.list_archs())}")
    _, photos = load_photos(args.size)
    calibration = to_float(photos)
    rows = []
    for arch in archs:
        row = bench_arch(arch, args.size, args.runs, args.rounds, calibration)
        print(f"{arch}: float {row['float_ms']:.2f} ms, int8 {row['int8_ms']:.2f} ms "
              f"({row['int8_over_float']:.2f}x; stem {row['stem']['float_ms']:.2f} / "
              f"{row['stem']['int8_ms']:.2f} ms)", flush=True)
        rows.append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version
    result = {"benchmark": "zoo", "batch": 1, "threads": 1, "delegate": "XNNPACK",
              "host": {"machine": platform.machine(), "python": platform.python_version(), "cpu": cpu_info()},
              "versions": {"ai_edge_litert": version("ai-edge-litert"), "mobilekit": version("mobilekit")},
              "settings": {"size": args.size, "runs": args.runs, "rounds": args.rounds},
              "rows": rows}
    write_json_atomic(out, result)
    write_text_atomic(out.with_suffix(".md"), to_markdown(rows))
    print(to_markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
