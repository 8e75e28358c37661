"""ARM benchmark: every registered arch at 224x224, 1,000 classes, float vs int8, host and emulated ARM.

For each arch (paper configuration, untrained weights: neither latency nor instruction
counts depend on the values; int8 calibrated on scikit-image's photos):
- host batch-1 latency of the float and int8 files (XNNPACK, 1 thread, interleaved in one run);
- instructions per invoke on two qemu CPU models, cortex-a76 (dotprod) and cortex-a53 (none),
  at 1 and 4 threads (real aarch64 LiteRT kernels; `mobilekit emulate setup` first);
- predicted latency on two devices, snapdragon-845 and snapdragon-450 (mobilekit.bench.devices).
Then the validation the cost model was not fitted on: MobileNet v1 / v2 float, 1 thread, on the
Snapdragon 820 profile against the published Pixel 1 figures (devices.json "validation").

Usage: python benchmarks/arm.py [--archs a,b] [--runs 30] [--out benchmarks/results/arm.json]
       python benchmarks/arm.py --repredict   (cost model changed: predictions from the stored counts)
Writes the JSON and a Markdown table next to it (arm.md, the README's table).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

from mobilekit.hostinfo import cpu_info

CPUS = ("cortex-a76", "cortex-a53")
DEVICES = ("snapdragon-845", "snapdragon-450")


def files_for(arch: str, size: int, calibration, **kwargs) -> dict[str, bytes]:
    import mobilekit
    from mobilekit.convert import convert_float, convert_int8

    model = mobilekit.create(arch, input_shape=(size, size, 3), classes=1000, **kwargs)
    return {"float": convert_float(model), "int8": convert_int8(model, calibration)}


def bench_arch(arch: str, size: int, runs: int, calibration) -> dict:
    from mobilekit.bench.devices import arm_section
    from mobilekit.bench.harness import benchmark

    files = files_for(arch, size, calibration)
    host = benchmark(files, num_runs=runs, warmup_runs=5)
    row = {"arch": arch, "input": size, "float_bytes": len(files["float"]), "int8_bytes": len(files["int8"]),
           "host_ms": {k: host[k]["median_ms"] for k in files}}
    for kind, content in files.items():
        t0 = time.monotonic()
        row[kind] = arm_section(content, cpus=CPUS, device_names=DEVICES, threads=(1, 4), repeats=1)
        row[kind]["seconds"] = round(time.monotonic() - t0, 1)
    row["instructions"] = {cpu: {kind: {t: row[kind]["emulated"][cpu]["threads"][t]["instructions"] for t in ("1", "4")}
                                 for kind in files} for cpu in CPUS}
    row["predicted_ms"] = {d: {kind: row[kind]["devices"][d]["predicted_ms"] for kind in files} for d in DEVICES}
    row["bit_exact"] = all(row[kind]["emulated"][cpu]["bit_exact"] for kind in files for cpu in CPUS)
    return row


def validation(size: int, calibration) -> list[dict]:
    """Predictions for the published figures the model was not fitted on."""
    from mobilekit.bench.devices import data, device, predict_ms
    from mobilekit.emulate import count_instructions

    out = []
    for v in data()["validation"]:
        cpu = device(v["device"]).qemu_cpu
        for fig in v["figures"]:
            content = files_for(fig["arch"], size, calibration, **fig["kwargs"])[v["kind"]]
            n = count_instructions(content, cpu, threads=(v["threads"],), repeats=1)["threads"][str(v["threads"])]
            predicted = predict_ms(v["device"], n["instructions"], v["kind"], v["threads"])
            label = fig["arch"] + "".join(f" {k}={val}" for k, val in fig["kwargs"].items())
            out.append({"source": v["source"], "device": v["device"], "threads": v["threads"], "kind": v["kind"],
                        "arch": label, "qemu_cpu": cpu, "instructions": n["instructions"],
                        "published_ms": fig["ms"], "predicted_ms": predicted, "error": predicted / fig["ms"] - 1})
    return out


def repredict(result: dict) -> dict:
    """Predictions and validation recomputed from the counts stored in ``result`` (no emulation)."""
    from mobilekit.bench.devices import basis, prediction, predict_ms

    for row in result["rows"]:
        for kind in ("float", "int8"):
            section = row[kind]
            section["devices"] = {d: prediction(d, section["emulated"][devices_cpu(d)], kind) for d in DEVICES}
        row["predicted_ms"] = {d: {k: row[k]["devices"][d]["predicted_ms"] for k in ("float", "int8")}
                               for d in DEVICES}
    for c in result["validation"]:
        c["predicted_ms"] = predict_ms(c["device"], c["instructions"], c["kind"], c["threads"])
        c["error"] = c["predicted_ms"] / c["published_ms"] - 1
    result["cost_model"] = basis()
    return result


def devices_cpu(name: str) -> str:
    from mobilekit.bench.devices import device

    return device(name).qemu_cpu


def to_markdown(rows: list[dict], checks: list[dict]) -> str:
    lines = ["| arch | host float / int8 ms | a76 Minstr float / int8 (1 thr) | a76 int8/float "
             "| a53 Minstr float / int8 (1 thr) | a53 int8/float | SD845 float / int8 ms | SD450 float / int8 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        i = r["instructions"]
        (a76f, a76q), (a53f, a53q) = [[i[c][k]["1"] / 1e6 for k in ("float", "int8")] for c in CPUS]
        p = r["predicted_ms"]
        lines.append(f"| {r['arch']} | {r['host_ms']['float']:.2f} / {r['host_ms']['int8']:.2f} | "
                     f"{a76f:,.1f} / {a76q:,.1f} | {a76q / a76f:.2f} | {a53f:,.1f} / {a53q:,.1f} | {a53q / a53f:.2f} | "
                     f"{p['snapdragon-845']['float']:.1f} / {p['snapdragon-845']['int8']:.1f} | "
                     f"{p['snapdragon-450']['float']:.1f} / {p['snapdragon-450']['int8']:.1f} |")
    lines += ["", "Validation (published figures the cost model was not fitted on):", "",
              "| device | arch | threads | published ms | predicted ms | error |", "|---|---|---:|---:|---:|---:|"]
    for c in checks:
        lines.append(f"| {c['device']} | {c['arch']} {c['kind']} | {c['threads']} | {c['published_ms']:g} | "
                     f"{c['predicted_ms']:.1f} | {c['error']:+.0%} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import mobilekit
    from mobilekit.files import write_json_atomic, write_text_atomic
    from mobilekit.bench.devices import basis
    from mobilekit.data import to_float
    from mobilekit.emulate.root import require_ready
    from mobilekit.photos import load_photos

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default=",".join(mobilekit.list_archs()))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--runs", type=int, default=30, help="timed host runs per file")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "arm.json"))
    p.add_argument("--repredict", action="store_true", help="recompute the predictions in --out from its counts")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.repredict:
        import json

        result = repredict(json.loads(out.read_text()))
        write_json_atomic(out, result)
        write_text_atomic(out.with_suffix(".md"), to_markdown(result["rows"], result["validation"]))
        print(to_markdown(result["rows"], result["validation"]))
        return 0
    archs = [a for a in args.archs.split(",") if a]
    unknown = sorted(set(archs) - set(mobilekit.list_archs()))
    if unknown:
        p.error(f"unknown arch {unknown[0]!r}; valid: {', '.join(mobilekit.list_archs())}")
    require_ready()
    _, photos = load_photos(args.size)
    calibration = to_float(photos)
    rows = []
    for arch in archs:
        row = bench_arch(arch, args.size, args.runs, calibration)
        i = row["instructions"]
        print(f"{arch}: host {row['host_ms']['float']:.2f} / {row['host_ms']['int8']:.2f} ms; a76 int8/float "
              f"{i['cortex-a76']['int8']['1'] / i['cortex-a76']['float']['1']:.2f}, a53 "
              f"{i['cortex-a53']['int8']['1'] / i['cortex-a53']['float']['1']:.2f}; SD845 "
              f"{row['predicted_ms']['snapdragon-845']['float']:.1f} / {row['predicted_ms']['snapdragon-845']['int8']:.1f}"
              f" ms", flush=True)
        rows.append(row)
    checks = validation(args.size, calibration)
    for c in checks:
        print(f"validation {c['device']} {c['arch']}: published {c['published_ms']:g} ms, predicted "
              f"{c['predicted_ms']:.1f} ms ({c['error']:+.0%})", flush=True)
    result = {"benchmark": "arm", "batch": 1, "delegate": "XNNPACK", "cpus": list(CPUS), "devices": list(DEVICES),
              "host": {"machine": platform.machine(), "python": platform.python_version(), "cpu": cpu_info()},
              "versions": {"ai_edge_litert": version("ai-edge-litert"), "mobilekit": version("mobilekit")},
              "cost_model": basis(), "settings": {"size": args.size, "runs": args.runs, "threads": [1, 4]},
              "rows": rows, "validation": checks}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, result)
    write_text_atomic(out.with_suffix(".md"), to_markdown(rows, checks))
    print(to_markdown(rows, checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
