"""Zoo benchmark: every registered arch at 224x224, 1,000 classes, before and after the export rewrites.

For each arch (paper configuration, untrained weights: latency does not depend on the values) and the
ported ImageNet MobileNetV2 (torchvision's weights, PyTorch padding, normalisation in the model):
params, MACs, and per export variant -- "paper" (no rewrite), "default" (mobilekit.rewrites'
defaults) and "+NAME" (the defaults and one opt-in rewrite, where it changes the graph) -- the
float32 and full-int8 .tflite sizes,
their int8 ops, batch-1 host latency with XNNPACK at 1 thread (every file of an arch timed in
alternating rounds of the same run, so ratios are fair on a noisy host) and emulated instruction
counts on cortex-a76 and cortex-a53 (1 thread; int8 for every variant, float for paper and default) and
on an emulated AVX2-only x86 (qemu-x86_64 -cpu Haswell: the x86 kind without VNNI, where int8 is
slowest; instruction counts, not times).
The int8 files are calibrated on scikit-image's photos.

Usage: python benchmarks/zoo.py [--archs a,b] [--size 224] [--runs 50] [--rounds 5] [--no-arm]
                                [--out benchmarks/results/zoo.json]
Writes the JSON and a Markdown table next to it (zoo.md, the README's table).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from mobilekit.hostinfo import cpu_info

IMAGENET = "mobilenet_v2_imagenet"
CPUS = ("cortex-a76", "cortex-a53")
X86_AVX2 = "x86-avx2"  # emulated Haswell (AVX2, no VNNI): the x86 host kind this machine is not
CANDIDATES = ("pad-grow", "space-to-depth-stem")  # opt-in rewrites, each measured on top of the defaults


def measure(contents: dict[str, bytes], runs: int, rounds: int) -> dict[str, dict]:
    """Median/p90 batch-1 latency (ms) per file: the bench harness's interleaved timing (one run of each
    file per round, alternating which goes first), ``runs * rounds`` timed runs each."""
    from mobilekit.bench.harness import benchmark

    timed = benchmark(contents, num_runs=runs * rounds, warmup_runs=5, num_threads=1)
    return {k: {"median_ms": v["median_ms"], "p90_ms": v["p90_ms"], "runs": v["runs"]} for k, v in timed.items()}


def _model(arch: str, size: int):
    import mobilekit

    if arch == IMAGENET:
        from mobilekit.weights import imagenet_mobilenet_v2
        return imagenet_mobilenet_v2(input_shape=(size, size, 3))
    return mobilekit.create(arch, input_shape=(size, size, 3), classes=1000)


def _x86_avx2_count(content: bytes, kind: str) -> int:
    """Instructions of one invoke on an emulated AVX2-only x86 (qemu-x86_64 -cpu Haswell: AVX2 and FMA, no
    AVX-512 or VNNI, which QEMU's TCG does not implement), with this host's Python and LiteRT and the ARM
    root's counting plugin: XNNPACK then picks its AVX2 kernels, as on an EPYC or Xeon without VNNI.
    An instruction count, not a time; it stands in for the host kind this machine is not."""
    import json
    import os
    import shutil
    import site
    import subprocess
    import tempfile

    from mobilekit.emulate.root import GUEST_SCRIPT, cache_dir

    with tempfile.TemporaryDirectory(prefix="mobilekit-x86-") as d:
        d = Path(d)
        (d / "model.tflite").write_bytes(content)
        rng = np.random.default_rng(0)
        x = (rng.uniform(0, 1, (1, 224, 224, 3)).astype(np.float32) if kind == "float"
             else rng.integers(-128, 128, (1, 224, 224, 3)).astype(np.int8))
        np.savez(d / "inputs.npz", input0=x)
        (d / "job.json").write_text(json.dumps({"model": "model.tflite", "inputs": "inputs.npz", "out": "out.npz",
                                                "threads": [1], "repeats": 1}))
        shutil.copyfile(GUEST_SCRIPT, d / "guest.py")
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": site.getsitepackages()[0], "PYTHONHASHSEED": "0",
               "TF_CPP_MIN_LOG_LEVEL": "3", "LANG": "C.UTF-8"}
        cmd = ["qemu-x86_64", "-cpu", "Haswell", "-plugin", f"{cache_dir() / 'libicount.so'},out=counts.txt",
               os.path.realpath(sys.executable), "guest.py", "job.json"]
        r = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise RuntimeError(f"x86 emulation failed: {r.stderr.strip().splitlines()[-1:]}")
        rows = [int(line.split()[0]) for line in (d / "counts.txt").read_text().splitlines()]
    return rows[-1]  # the second invoke (the first packs the weights)


def _counts(content: bytes, kind: str) -> dict[str, int]:
    from mobilekit.emulate.count import count_instructions

    counts = {cpu: count_instructions(content, cpu, threads=(1,), repeats=1)["threads"]["1"]["instructions"]
              for cpu in CPUS}
    return {**counts, X86_AVX2: _x86_avx2_count(content, kind)}


def bench_arch(arch: str, size: int, runs: int, rounds: int, calibration: np.ndarray, arm: bool) -> dict:
    from mobilekit.complexity import complexity
    from mobilekit.bench import delegate_partitions, make_interpreter
    from mobilekit.convert import convert_pair
    from mobilekit.rewrites import DEFAULT_REWRITES
    from mobilekit.tflite_file import TfliteFile

    model = _model(arch, size)
    info = complexity(model)
    variants = {}
    seen = set()
    for name, rewrites in (("paper", ()), ("default", DEFAULT_REWRITES),
                           *((f"+{c}", (*DEFAULT_REWRITES, c)) for c in CANDIDATES)):
        pair = convert_pair(model, calibration, rewrites)
        applied = [f"{e['rewrite']}:{e['layer']}" for e in pair["rewrites"] if e["applied"]]
        if pair["int8"] in seen:
            continue  # the same graph as an earlier variant (nothing more applied)
        seen.add(pair["int8"])
        variants[name] = {"rewrites": applied,
                          "refused": [f"{e['rewrite']}:{e['layer']}: {e['reason']}" for e in pair["rewrites"]
                                      if not e["applied"]],
                          "files": {"float": pair["float"], "int8": pair["int8"]}}
    timed = measure({f"{v}/{k}": c for v, d in variants.items() for k, c in d["files"].items()}, runs, rounds)
    out = {}
    for name, d in variants.items():
        files = d.pop("files")
        partitions, outside = delegate_partitions(make_interpreter(files["int8"]))
        row = {**d, "float_bytes": len(files["float"]), "int8_bytes": len(files["int8"]),
               "float_ms": timed[f"{name}/float"]["median_ms"], "int8_ms": timed[f"{name}/int8"]["median_ms"],
               "int8_ops": TfliteFile(files["int8"]).op_counts(),
               "int8_xnnpack_partitions": partitions, "int8_ops_outside_xnnpack": outside}
        row["int8_over_float"] = row["int8_ms"] / row["float_ms"]
        if arm:
            row["instructions"] = {"int8": _counts(files["int8"], "int8")}
            if name in ("paper", "default"):
                row["instructions"]["float"] = _counts(files["float"], "float")
        out[name] = row
    if "default" not in out:
        out["default"] = {**out["paper"], "same_as": "paper"}
    return {"arch": arch, "input": size, "params": info["params"], "macs": info["macs"], "variants": out}


def _minstr(v: dict, kind: str, cpu: str) -> str:
    n = v.get("instructions", {}).get(kind, {}).get(cpu)
    return "-" if n is None else f"{n / 1e6:.1f}"


def _x86_ratio(v: dict) -> str:
    n = v.get("instructions", {})
    if X86_AVX2 not in n.get("float", {}):
        return "-"
    return f"{n['int8'][X86_AVX2] / n['float'][X86_AVX2]:.2f}"


def to_markdown(rows: list[dict]) -> str:
    lines = ["| arch | params | MMACs | default rewrites | int8 KiB | host float / int8 ms | int8/float "
             "| a76 Minstr float / int8 | a53 Minstr float / int8 | a76 / a53 int8 vs paper "
             "| AVX2 x86 Minstr float / int8 (int8/float) |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p, d = r["variants"]["paper"], r["variants"]["default"]
        done = ", ".join(sorted({x.split(":")[0] for x in d["rewrites"]})) or "none apply"
        change = " / ".join(
            f"{(d['instructions']['int8'][c] / p['instructions']['int8'][c] - 1) * 100:+.1f}%"
            if "instructions" in d else "-" for c in CPUS)
        lines.append(f"| {r['arch']} | {r['params']:,} | {r['macs'] / 1e6:,.1f} | {done} | "
                     f"{d['int8_bytes'] / 1024:,.0f} | {d['float_ms']:.2f} / {d['int8_ms']:.2f} | "
                     f"{d['int8_over_float']:.2f} | {_minstr(d, 'float', CPUS[0])} / {_minstr(d, 'int8', CPUS[0])} | "
                     f"{_minstr(d, 'float', CPUS[1])} / {_minstr(d, 'int8', CPUS[1])} | {change} | "
                     f"{_minstr(d, 'float', X86_AVX2)} / {_minstr(d, 'int8', X86_AVX2)} ({_x86_ratio(d)}) |")
    return "\n".join(lines) + "\n"


def ops_change(before: dict, after: dict) -> str:
    """"ADD -1, CONCATENATION +2": the ops a variant removed or added, by type; "none" when equal."""
    diff = Counter(after)
    diff.subtract(before)
    return ", ".join(f"{n} {c:+d}" for n, c in sorted(diff.items()) if c) or "none"


def candidates_markdown(rows: list[dict]) -> str:
    """The opt-in rewrites on top of the defaults: what each does to int8 on ARM and the host."""
    lines = ["| arch | default + | int8 ops removed / added | a76 int8 | a53 int8 | AVX2 x86 int8 "
             "| host int8 ms (default -> with it) |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        p = r["variants"]["default"]
        for name in CANDIDATES:
            v = r["variants"].get(f"+{name}")
            if v is None:
                continue
            ops = ops_change(p["int8_ops"], v["int8_ops"])
            arm = [f"{(v['instructions']['int8'][c] / p['instructions']['int8'][c] - 1) * 100:+.1f}%"
                   if "instructions" in v else "-" for c in (*CPUS, X86_AVX2)]
            lines.append(f"| {r['arch']} | {name} | {ops} | {arm[0]} | {arm[1]} | {arm[2]} | "
                         f"{p['int8_ms']:.2f} -> {v['int8_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import mobilekit
    from mobilekit.files import write_json_atomic, write_text_atomic
    from mobilekit.data import to_float
    from mobilekit.photos import load_photos

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default=",".join([*mobilekit.list_archs(), IMAGENET]))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--runs", type=int, default=50, help="timed runs per round and file")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-arm", action="store_true", help="skip the emulated ARM counts")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "zoo.json"))
    args = p.parse_args(argv)
    archs = [a for a in args.archs.split(",") if a]
    unknown = sorted(set(archs) - {*mobilekit.list_archs(), IMAGENET})
    if unknown:
        p.error(f"unknown arch {unknown[0]!r}; valid: {', '.join(mobilekit.list_archs())}")
    _, photos = load_photos(args.size)
    calibration = to_float(photos)
    rows = []
    for arch in archs:
        row = bench_arch(arch, args.size, args.runs, args.rounds, calibration, not args.no_arm)
        for name, v in row["variants"].items():
            print(f"{arch} {name}: float {v['float_ms']:.2f} ms, int8 {v['int8_ms']:.2f} ms "
                  f"({v['int8_over_float']:.2f}x) {v.get('instructions', '')}", flush=True)
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
    markdown = to_markdown(rows) + "\n" + candidates_markdown(rows)
    write_text_atomic(out.with_suffix(".md"), markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
