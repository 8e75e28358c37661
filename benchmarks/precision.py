"""Mixed precision: what int8, int16x8 and auto (budgets 0.5 and 2 points) cost and buy, measured.

For each model: the float file and the converter's int8 file, then every precision setting through
``mobilekit.precision.assign`` (the build's own stage) on the same held-out images: top-1 agreement with the
float file, output SQNR, the layers lifted, size, host latency (all settings' files interleaved in one run,
LiteRT with XNNPACK, 1 thread) and instructions per invoke on the emulated cortex-a76 and cortex-a53 (1 thread,
XNNPACK, LiteRT's aarch64 kernels under qemu), with XNNPACK's partitions.

Part 1, ImageNet MobileNetV2 (`--weights imagenet`): calibrated on the 15 photos and their mirrors as the build
does (percentile ranges, its default), judged on 150 augmented photo views.
Part 2, Fashion-MNIST, every registered arch: the int8-ptq recipe's float training (1.5 epochs at 48x48) on
--limit-train images, judged on the 10,000 test images (auto judges on the first 2,000).

    python benchmarks/precision.py                          # both parts
    python benchmarks/precision.py --parts imagenet --no-arm

Writes benchmarks/results/precision.json (the README's and docs/numerics.md's tables via benchmarks/docs.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "precision.json"
SETTINGS = {"int8": {"precision": "int8"}, "int16x8": {"precision": "int16x8"},
            "auto 0.5": {"precision": "auto", "budget": 0.5}, "auto 2": {"precision": "auto", "budget": 2.0}}
CPUS = ("cortex-a76", "cortex-a53")


def measure(name: str, int8: bytes, reference: bytes, calibration, held_out, method: str, arm: bool) -> dict:
    """Every setting of SETTINGS on one model: the section assign() reports, plus latency and ARM counts."""
    from mobilekit.bench.harness import benchmark
    from mobilekit.errors import MobilekitError
    from mobilekit.precision import assign, compare, output_floor, probabilities, xnnpack

    p_float = probabilities(reference, held_out)
    files, rows = {}, {}
    for setting, kw in SETTINGS.items():
        t0 = time.perf_counter()
        try:
            content, section = assign(int8, reference, calibration, held_out, method=method, say=lambda _: None, **kw)
        except MobilekitError as e:
            rows[setting] = {"refused": str(e)}
            continue
        full = compare(probabilities(content, held_out), p_float)  # on every held-out image, not auto's first 2,000
        files[setting] = content
        rows[setting] = {"top1_agreement": full["top1_agreement"], "output_sqnr_db": full["output_sqnr_db"],
                         "lifted": section["lifted"], "layers_not_int8": sorted(
                             k for k, v in section["layers"].items() if v != "int8"),
                         "ops": section["ops"], "io": section["io"], "full_int8": section["full_int8"],
                         "xnnpack": xnnpack(content), "bytes": len(content),
                         "steps": len(section["steps"]), "seconds": round(time.perf_counter() - t0, 1)}
        print(f"  {name} {setting}: agreement {full['top1_agreement']:.2%}, SQNR {full['output_sqnr_db']:.1f} dB, "
              f"{len(section['lifted'])} lifted, {len(content):,} B", flush=True)
    timing = benchmark(files, num_runs=100, warmup_runs=5, min_secs=2.0)
    for setting in files:
        rows[setting]["host_ms"] = timing[setting]["median_ms"]
    if arm:
        from mobilekit.emulate.count import count_instructions

        for setting, content in files.items():
            rows[setting]["instructions"] = {}
            for cpu in CPUS:
                r = count_instructions(content, cpu, threads=(1,), repeats=1)
                rows[setting]["instructions"][cpu] = r["threads"]["1"]["instructions"]
            print(f"  {name} {setting}: {rows[setting]['instructions']}", flush=True)
    base = rows["int8"]
    for r in rows.values():
        if "bytes" in r:
            r["size_vs_int8"] = r["bytes"] / base["bytes"]
            r["host_ms_vs_int8"] = r["host_ms"] / base["host_ms"]
            if arm:
                r["a76_vs_int8"] = r["instructions"]["cortex-a76"] / base["instructions"]["cortex-a76"]
    return {"images": int(len(held_out)), "float_bytes": len(reference), "settings": rows,
            "output_floor": output_floor(int8, p_float)}


def imagenet(arm: bool) -> dict:
    from mobilekit.convert import convert_float
    from mobilekit.numerics import load_images
    from mobilekit.pipeline import BuildConfig, stages
    from mobilekit.progress import console

    cfg = BuildConfig(arch="mobilenet_v2", weights="imagenet")
    data = stages.load_data(cfg, console)
    model = stages.create_model(cfg, data)
    calibration = stages.calibration_images(cfg, data)
    _, int8, _ = stages.convert(cfg, stages.Trained(model, {}), calibration)
    described, held_out = load_images("photos", (224, 224, 3), stages.PRECISION_IMAGES, cfg.seed)
    out = measure("mobilenet_v2 imagenet", int8, convert_float(model), calibration, held_out, cfg.spec.calibration,
                  arm)
    return {"calibration": f"the 15 photos and their mirrors, {cfg.spec.calibration} ranges", "held_out": described,
            **out}


def fashion(archs: list[str], limit_train: int, arm: bool, result: dict, save) -> dict:
    from mobilekit.backend import keras, tf
    from mobilekit.pipeline import BuildConfig, stages
    from mobilekit.progress import console

    part = result.get("fashion") or {}
    part.update({"dataset": "fashion-mnist", "input_size": 48, "epochs": 1.5, "recipe": "int8-ptq",
                 "limit_train": limit_train, "test_images": 10000})
    data = stages.load_data(BuildConfig(limit_train=limit_train), console)
    done = {r["arch"]: r for r in part.get("rows", [])}
    for arch in archs:
        if arch in done:
            continue
        cfg = BuildConfig(arch=arch, recipe="int8-ptq", limit_train=limit_train)
        keras.utils.set_random_seed(cfg.seed)
        tf.config.experimental.enable_op_determinism()
        model = stages.create_model(cfg, data)
        float_accuracy = stages.train_float(cfg, data, model)
        calibration = stages.calibration_images(cfg, data)
        reference, int8, _ = stages.convert(cfg, stages.Trained(model, {}), calibration)
        done[arch] = {"arch": arch, "float_accuracy": float_accuracy,
                      **measure(arch, int8, reference, calibration, data.x_test, cfg.spec.calibration, arm)}
        part["rows"] = [done[a] for a in archs if a in done]
        result["fashion"] = part
        save()
    part["rows"] = [done[a] for a in archs]
    return part


def _row(name: str, setting: str, r: dict, arm: bool) -> str:
    if "refused" in r:
        return f"| {name} | {setting} | refused: {r['refused']} |" + " |" * (6 if arm else 4)
    names = r["lifted"]
    lifted = (f"{len(names)}: " + ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")) if names else "-"
    if setting == "int16x8":
        lifted = "all (int16 activations)"
    cells = [name, setting, f"{r['top1_agreement']:.1%}", f"{r['output_sqnr_db']:.1f}", lifted or "-",
             f"{r['bytes'] / 1024:,.0f} KiB", f"{r['host_ms']:.2f} ({r['host_ms_vs_int8']:.2f}x)"]
    if arm:
        ins = r["instructions"]
        cells += [f"{ins['cortex-a76'] / 1e6:,.1f}M ({r['a76_vs_int8']:.2f}x)", f"{ins['cortex-a53'] / 1e6:,.1f}M"]
    cells.append(f"{r['xnnpack']['partitions']} / {r['xnnpack']['ops_outside']}" if r.get("xnnpack") else "-")
    return "| " + " | ".join(cells) + " |"


def to_markdown(d: dict) -> str:
    """The measured table (README / docs/numerics.md, through benchmarks/docs.py)."""
    arm = bool(d.get("arm_cpus"))
    host = d["host"]
    head = ["| model | precision | top-1 agreement with float | output SQNR dB | layers lifted to float | size | "
            "host ms (vs int8) |" + (" a76 instr. (vs int8) | a53 instr. |" if arm else "")
            + " XNNPACK partitions / ops outside |",
            "|---|---|---:|---:|---|---:|---:|" + ("---:|---:|" if arm else "") + "---:|"]
    lines = [f"Measured with `python benchmarks/precision.py` on {host['model']} ({host['cpus']} cores; "
             f"{host['summary']}); host latency: every setting's file interleaved in one run, LiteRT + XNNPACK, "
             "1 thread" + ("; instructions per invoke on qemu's cortex-a76 / cortex-a53, 1 thread, XNNPACK" if arm
                          else "") + ".", ""]
    if "imagenet" in d:
        im = d["imagenet"]
        lines += [f"ImageNet MobileNetV2 (`--weights imagenet`), calibrated on {im['calibration']}, judged on "
                  f"{im['held_out']}:", "", *head]
        lines += [_row("mobilenet_v2", k, r, arm) for k, r in im["settings"].items()]
        if "output_floor" in im:
            lines += ["", f"What the int8 output's own rounding allows (the float probabilities rounded to its steps): "
                          f"{im['output_floor']['top1_agreement']:.1%} top-1 agreement."]
        auto = [r for k, r in im["settings"].items() if k.startswith("auto") and "top1_agreement" in r]
        if auto and arm:
            best = max(auto, key=lambda r: r["top1_agreement"])
            ok = best["top1_agreement"] >= 0.97 and best["a76_vs_int8"] <= 1.3
            lines += ["", f"Goal (auto >= 97% top-1 agreement at <= 1.3x int8's cortex-a76 instructions): "
                          f"{'met' if ok else 'not met'}: best auto {best['top1_agreement']:.1%} at "
                          f"{best['a76_vs_int8']:.2f}x."]
        lines.append("")
    if "fashion" in d:
        f = d["fashion"]
        arm_f = arm and all("instructions" in r["settings"]["int8"] for r in f["rows"])
        lines += [f"Fashion-MNIST, the {f['recipe']} recipe's float training ({f['epochs']:g} epochs at "
                  f"{f['input_size']}x{f['input_size']} on {f['limit_train']:,} images), judged on the "
                  f"{f['test_images']:,} test images:", "",
                  *(head if arm_f else [h.replace(" a76 instr. (vs int8) | a53 instr. |", "").replace(
                      "---:|---:|---:|---:|---:|", "---:|---:|---:|") for h in head])]
        for r in f["rows"]:
            lines += [_row(r["arch"], k, s, arm_f) for k, s in r["settings"].items()]
        if all("output_floor" in r for r in f["rows"]):
            lines += ["", "What the int8 output's own rounding allows (the float probabilities rounded to its 1/256 "
                          "steps): " + ", ".join(f"{r['arch']} {r['output_floor']['top1_agreement']:.2%}"
                                                 for r in f["rows"]) + "."]
        none = [r["arch"] for r in f["rows"] if not r["settings"]["auto 0.5"].get("lifted")
                and "refused" not in r["settings"]["auto 0.5"]]
        lines += ["", f"Archs needing no lift for a 0.5-point budget: {len(none)} of {len(f['rows'])}"
                      + (f" ({', '.join(sorted(set(r['arch'] for r in f['rows']) - set(none)))} needed some)."
                         if len(none) < len(f["rows"]) else ".")]
    return "\n".join(lines).rstrip()


def summary(d: dict) -> str:
    """The README's lines: the ImageNet MobileNetV2 against the goal, and the Fashion-MNIST count."""
    lines = []
    if "imagenet" in d:
        st = d["imagenet"]["settings"]
        parts = [f"int8 {st['int8']['top1_agreement']:.1%} top-1 agreement with float"]
        w = st["int16x8"]
        parts.append(f"int16x8 {w['top1_agreement']:.1%} at {w['a76_vs_int8']:.1f}x int8's cortex-a76 instructions "
                     "(int16 kernels leave XNNPACK)")
        for k in ("auto 0.5", "auto 2"):
            r = st[k]
            parts.append(f"{k} points: refused (no assignment meets it)" if "refused" in r else
                         f"{k} points: {r['top1_agreement']:.1%} with {len(r['lifted'])} layers in float at "
                         f"{r['a76_vs_int8']:.2f}x the instructions")
        lines.append("ImageNet MobileNetV2 (`--weights imagenet`, 150 photo views): " + "; ".join(parts)
                     + " (goal: >= 97% at <= 1.3x; table and findings in [docs/numerics.md](docs/numerics.md)).")
    if "fashion" in d:
        rows = d["fashion"]["rows"]
        none = [r["arch"] for r in rows if not r["settings"]["auto 0.5"].get("lifted")
                and "refused" not in r["settings"]["auto 0.5"]]
        lines.append(f"Fashion-MNIST: int8 files agree with float on {min(r['settings']['int8']['top1_agreement'] for r in rows):.1%}"
                     f"-{max(r['settings']['int8']['top1_agreement'] for r in rows):.1%} of the test images; "
                     f"{len(none)} of {len(rows)} archs need no lift for a 0.5-point budget.")
    return "\n".join(lines)


def main(argv=None) -> int:
    from mobilekit import archs as registry
    from mobilekit.files import write_json_atomic
    from mobilekit.hostinfo import cpu_info

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default=",".join(registry.list_archs()))
    p.add_argument("--parts", default="imagenet,fashion")
    p.add_argument("--limit-train", type=int, default=10000)
    p.add_argument("--no-arm", dest="arm", action="store_false")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    path = Path(args.out)
    result = json.loads(path.read_text()) if path.is_file() else {}
    result.update(host=cpu_info(), settings=SETTINGS, arm_cpus=list(CPUS) if args.arm else [])

    def save():
        write_json_atomic(path, result)

    parts = args.parts.split(",")
    if "imagenet" in parts:
        result["imagenet"] = imagenet(args.arm)
        save()
    if "fashion" in parts:
        result["fashion"] = fashion(args.archs.split(","), args.limit_train, args.arm, result, save)
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
