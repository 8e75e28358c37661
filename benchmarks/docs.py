"""Render the numbers in README.md and docs/*.md from the committed benchmark results.

Every measured number in the prose lives between ``<!-- begin generated: NAME -->`` and
``<!-- end generated: NAME -->`` and is written here from benchmarks/results/*.json, so text and JSON
cannot drift apart:

    python benchmarks/docs.py           # rewrite the blocks
    python benchmarks/docs.py --check   # exit 1 naming each block whose text differs from its JSON

tests/test_readme.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- begin generated: ([\w-]+) -->\n)(.*?)(<!-- end generated: \2 -->)", re.S)


def _json(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _build(name: str) -> dict:
    return _json("builds.json")["builds"][name]


def _host(host: dict) -> str:
    return f"{host['model']} ({host['cpus']} cores; {host['summary']})"


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def default_build() -> str:
    b = _build("default")
    r, acc, z = b["report"], b["report"]["accuracy"], b["report"]["sizes"]
    per_layer = r["sparsity"]["per_layer"].values()
    worst = max(abs(s["sparsity"] - r["sparsity"]["target"]) for s in per_layer)
    lat = r["latency"]
    return "\n".join([
        f"`{b['command']}` (SqueezeNet 1.1, {'x'.join(map(str, r['input_shape']))}, Fashion-MNIST, seed {r['seed']}), "
        f"{b['wall_seconds']:.0f} s on {_host(b['host'])}:", "",
        "| | |", "|---|---|",
        f"| params / MACs | {r['params']:,} / {r['macs'] / 1e6:.2f} M ({r['num_classes']} classes) |",
        f"| float .tflite / int8 .tflite / int8 gzip | {_kib(z['float_tflite_bytes'])} / "
        f"{_kib(z['int8_tflite_bytes'])} / {_kib(z['int8_gzip_bytes'])} ({z['bits_per_param']:.2f} bits per conv "
        "parameter) |",
        f"| int8 weight sparsity | {r['sparsity']['int8_weights']:.1%} (target {r['sparsity']['target']:.0%}), every "
        f"conv layer within {worst * 100:.1f} points |",
        f"| accuracy, {acc['test_images']:,} test images | Keras float {acc['keras_float']:.2%}, pruned "
        f"{acc['keras_pruned']:.2%}, QAT {acc['keras_qat']:.2%}, **int8 .tflite {acc['tflite_int8']:.2%}** |",
        f"| batch-1 latency, LiteRT + XNNPACK, 1 thread | median {lat['median_ms']:.3f} ms, "
        f"p90 {lat['p90_ms']:.3f} ms |",
        f"| sha256 of the .tflite | `{r['sha256'][:16]}…` |"])


def default_build_stages() -> str:
    b = _build("default")
    s, acc = b["report"]["stage_seconds"], b["report"]["accuracy"]
    labels = {"data": "data (decode + resize 70k images)", "train_float": "float training + Keras evaluation",
              "prune": "pruning + evaluation", "qat": "QAT + evaluation", "convert": "conversion (float and int8)",
              "evaluate_int8": f"int8 evaluation, {acc['test_images']:,} images at batch 1",
              "latency": "latency (bench harness)", "write": "artifacts"}
    return "\n".join([f"Default run, measured (`{b['command']}`, seed 0): {s['total']:.0f} s of stages, "
                      f"{b['wall_seconds']:.0f} s wall with the process start, on {_host(b['host'])}.", "",
                      "| stage | seconds |", "|---|---|",
                      *[f"| {labels.get(k, k)} | {v:.1f} |" for k, v in s.items() if k != "total"], "",
                      f"Accuracy on the {acc['test_images']:,} test images: Keras float {acc['keras_float']:.2%}, "
                      f"pruned {acc['keras_pruned']:.2%}, QAT {acc['keras_qat']:.2%}, int8 .tflite "
                      f"{acc['tflite_int8']:.2%}."])


def build_speed() -> str:
    d = _json("build_speed.json")
    before, after = d["median"]["before"], d["median"]["after"]
    labels = {"data": "data", "train_float": "float training", "prune": "pruning", "qat": "QAT",
              "convert": "conversion", "evaluate_int8": "int8 evaluation", "numerics": "numerics"}
    lines = [f"`{d['command']}`, {d['repeats']} runs of each, alternating, each in a fresh process, on "
             f"{_host(d['host'])} (medians; the same run, so the two columns compare):", "",
             "| stage | before: s (first step s) | after: s (first step s) | training images/s after the first "
             "step (before / after) | Keras evaluation images/s |", "|---|---:|---:|---:|---:|"]
    for stage, label in labels.items():
        b, a = before["stage_seconds"].get(stage), after["stage_seconds"].get(stage)
        if b is None or a is None:
            continue
        tb, ta = before["throughput"].get(stage), after["throughput"].get(stage)
        first = (lambda t: f" ({t['first_step_s']:.1f})" if t else "")
        rate = f"{tb['train_images_per_s']:,.0f} / {ta['train_images_per_s']:,.0f}" if tb and ta else ""
        ev = f"{ta['evaluate_images_per_s']:,.0f}" if ta and "evaluate_images_per_s" in ta else ""
        lines.append(f"| {label} | {b:.1f}{first(tb)} | {a:.1f}{first(ta)} | {rate} | {ev} |")
    accs = sorted({r["int8_accuracy"] for v in d["runs"].values() for r in v})
    x = d["xla"]["images_per_s"]
    lines += ["", f"Whole build: {before['wall_s']:.0f} s before, {after['wall_s']:.0f} s after (stages "
                  f"{before['stage_seconds']['total']:.0f} -> {after['stage_seconds']['total']:.0f} s); int8 accuracy "
                  f"{', '.join(f'{a:.2%}' for a in accs)}, "
                  f"{'the same bytes in every run' if d['same_bytes'] else 'NOT the same bytes in every run'}. "
              f"XLA (`jit_compile`) on the float training step: {x['on']:,.0f} images/s against {x['off']:,.0f} "
              f"without, in the same run: not used."]
    return "\n".join(lines)


def default_build_sha() -> str:
    b = _build("default")
    sha = b["report"]["sha256"]
    return (f"The default full-size build (`{b['command']}`, seed 0) gives sha256 `{sha[:8]}…{sha[-8:]}` "
            f"(benchmarks/results/builds.json, on {_host(b['host'])}).")


def recipes() -> str:
    d = _json("deep_compression_squeezenet1_0.json")
    size = _build("size_only")["report"]
    return (f"Recipes ([docs/compression-recipes.md](docs/compression-recipes.md)): `{d['command']}` gave a "
            f"{d['sizes']['int8_gzip_bytes']:,}-byte gzip'd file, **{d['sizes']['bits_per_param']:.2f} bits per "
            f"parameter**, at {d['accuracy']['tflite_int8']:.2%} int8 accuracy against "
            f"{d['accuracy']['keras_float']:.2%} float on the full Fashion-MNIST test set; the {size['classes']:,}-class "
            f"ImageNet SqueezeNet 1.0 compresses to {size['sizes']['int8_gzip_bytes']:,} bytes gzip'd (`--size-only`; "
            "Deep Compression's: 0.47 MB).")


def pretrained() -> str:
    b = _build("pretrained")
    r = b["report"]
    photos, classes = r["accuracy"]["photos"], r["classes"]
    top1 = {name: classes[e["int8_top5"][0]] for name, e in photos["per_photo"].items()}
    agree = round(photos["top1_agreement"] * photos["photos"])
    sure = [e for e in photos["per_photo"].values() if e["float_top1_prob"] >= 0.5]
    sure_ok = all(e["float_top5"][0] == e["int8_top5"][0] for e in sure)
    in_top5 = all(e["int8_top5"][0] in e["float_top5"] for e in photos["per_photo"].values())
    return (f"Measured (`{b['command']}`, {b['wall_seconds']:.0f} s on {_host(b['host'])}): int8 .tflite "
            f"{_kib(r['sizes']['int8_tflite_bytes'])} (float {_kib(r['sizes']['float_tflite_bytes'])}), median "
            f"{r['latency']['median_ms']:.1f} ms at batch 1 on 1 thread; chelsea -> {top1['chelsea']}, coffee -> "
            f"{top1['coffee']} in int8; int8 top-1 = float top-1 on {agree} of {photos['photos']} photos"
            f" ({'all' if sure_ok else 'not all'} where float is >= 50% sure; int8's top-1 is in float's top 5 "
            f"on {'every photo' if in_top5 else 'some photos only'}).")


def zoo_host() -> str:
    d = _json("zoo.json")
    cpu = d["host"].get("cpu")
    where = f"on {_host(cpu)}" if cpu else "on a host whose CPU features were not recorded (x86_64)"
    rows = [r["variants"]["default"] for r in d["rows"]]
    ratios = [v["int8_over_float"] for v in rows]
    text = f"Measured {where}; int8/float {min(ratios):.2f}-{max(ratios):.2f} in the same run."
    counts = [v["instructions"] for v in rows if "x86-avx2" in v.get("instructions", {}).get("float", {})]
    if counts:
        avx2 = [c["int8"]["x86-avx2"] / c["float"]["x86-avx2"] for c in counts]
        text += (f" On an emulated AVX2-only x86 (qemu -cpu Haswell: no VNNI), int8/float by instruction count is "
                 f"{min(avx2):.2f}-{max(avx2):.2f}: int8 does not beat float there for "
                 f"{sum(r > 1 for r in avx2)} of {len(avx2)} models.")
    return text


def zoo_rewrites() -> str:
    """The paper -> default change per arch, and each opt-in rewrite on top of the defaults."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import zoo as zoo_script

    d = _json("zoo.json")
    lines = ["Int8, 1 thread, instruction counts in millions (paper -> default rewrites):", "",
             "| arch | default rewrites applied | int8 ops removed / added | cortex-a76 | cortex-a53 | AVX2 x86 |",
             "|---|---|---|---:|---:|---:|"]
    for r in d["rows"]:
        p, v = r["variants"]["paper"], r["variants"]["default"]
        change = zoo_script.ops_change(p["int8_ops"], v["int8_ops"])
        done = ", ".join(sorted({x.split(":")[0] for x in v["rewrites"]})) or "none apply"
        cells = [f"{p['instructions']['int8'][c] / 1e6:.1f} -> {v['instructions']['int8'][c] / 1e6:.1f}"
                 for c in ("cortex-a76", "cortex-a53", "x86-avx2")]
        lines.append(f"| {r['arch']} | {done} | {change} | {' | '.join(cells)} |")
    lines += ["", "Opt-in rewrites, each on top of the defaults (int8 instruction change; host time from the same run):",
              "", zoo_script.candidates_markdown(d["rows"]).rstrip("\n")]
    return "\n".join(lines)


def zoo() -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import zoo as zoo_script

    return zoo_host() + "\n\n" + zoo_script.to_markdown(_json("zoo.json")["rows"]).rstrip("\n")


def arm() -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import arm as arm_script

    d = _json("arm.json")
    cpu = d["host"].get("cpu")
    where = _host(cpu) if cpu else "a host whose CPU features were not recorded (x86_64)"
    ratio = {c: [r["instructions"][c]["int8"]["1"] / r["instructions"][c]["float"]["1"] for r in d["rows"]]
             for c in arm_script.CPUS}
    host = [r["host_ms"]["int8"] / r["host_ms"]["float"] for r in d["rows"]]
    exact = all(r["bit_exact"] for r in d["rows"]) if all("bit_exact" in r for r in d["rows"]) else None
    return (arm_script.to_markdown(d["rows"], d["validation"]).rstrip("\n") + "\n\n"
            f"On the ARM cores int8 costs {min(ratio['cortex-a76']):.2f}-{max(ratio['cortex-a76']):.2f}x the float "
            f"instructions with dotprod (cortex-a76) and "
            f"{min(ratio['cortex-a53']):.2f}-{max(ratio['cortex-a53']):.2f}x "
            f"without (cortex-a53), while the host ({where}) took {min(host):.2f}-{max(host):.2f}x float's time in the "
            "same run: a host's answer is a statement about its own CPU, not the phone's."
            + (" Every int8 output was bit-exact with the host." if exact else ""))


def ptq() -> str:
    d = _json("ptq.json")
    f, names = d["fashion"], ["minmax", "percentile", "mse", "minmax+bc", "mse+bc"]
    lines = [f"Measured with `python benchmarks/ptq.py` on {_host(d['host'])}: Fashion-MNIST, the default build's "
             f"float budget ({f['epochs']:g} epochs at {f['input_size']}x{f['input_size']}), one float model per arch, "
             "int8 accuracy on the 10,000 test images:", "",
             "| arch | float | " + " | ".join(f"int8-ptq {n}" for n in names) + " | int8-qat | best PTQ - float |",
             "|---|" + "---:|" * (len(names) + 3)]
    within = []
    for r in f["rows"]:
        best = max(r["ptq"][n]["accuracy"] for n in names)
        within.append(r["float_accuracy"] - best <= 0.005)
        lines.append(f"| {r['arch']} | {r['float_accuracy']:.2%} | "
                     + " | ".join(f"{r['ptq'][n]['accuracy']:.2%}" for n in names)
                     + f" | {r['qat']['accuracy']:.2%} | {(best - r['float_accuracy']) * 100:+.2f} |")
    lines += ["", f"Best post-training option within 0.5 points of float: {sum(within)} of {len(within)} archs."]
    if "imagenet" in d:
        im = d["imagenet"]
        parts = "; ".join(f"{n}: top-1 {im['options'][n]['output']['top1_agreement']:.1%}, top-5 "
                          f"{im['options'][n]['output']['top5_agreement']:.1%}, output SQNR "
                          f"{im['options'][n]['output']['sqnr_db']:.1f} dB" for n in names if n in im["options"])
        lines += ["", f"ImageNet MobileNetV2 (`--weights imagenet`), int8 against float on {im['inputs']} augmented "
                      f"photo views: {parts} (goal: top-1 >= 97%)."]
        for n in ("minmax", "percentile"):
            worst = ", ".join(f"{w['name']} {w['sqnr_db']:.1f} dB (rounding alone: {w['rounding_sqnr_db']:.1f} dB)"
                              for w in im["options"][n]["worst_layers"])
            lines.append(f"Lowest-SQNR layers with {n} ranges: {worst}.")
    return "\n".join(lines)


def transfer() -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import transfer as transfer_script

    return transfer_script.to_markdown(_json("transfer.json"))


def budget(short: bool = False) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import budget as budget_script

    result = _json("budget.json")
    return budget_script.summary(result) if short else budget_script.to_markdown(result)


def explore() -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import explore_squeezenet

    return explore_squeezenet.readme_section(_json("explore.json"))


def explore_cluster(summary: bool = False) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import explore_cluster as script

    result = _json("explore_cluster.json")
    return script.summary_line(result) if summary else script.to_markdown(result)


def precision(summary: bool = False) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import precision as script

    result = _json("precision.json")
    return script.summary(result) if summary else script.to_markdown(result)


def data_parallel(summary: bool = False) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import data_parallel as script

    result = _json("data_parallel.json")
    return script.summary_line(result) if summary else script.to_markdown(result)


def detection() -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import detection as script

    return script.to_markdown(_json("detection.json"))


RENDERERS = {"default-build": default_build, "default-build-stages": default_build_stages,
             "default-build-sha": default_build_sha, "build-speed": build_speed, "recipes": recipes, "pretrained": pretrained, "zoo": zoo,
             "zoo-host": zoo_host, "zoo-rewrites": zoo_rewrites, "ptq": ptq,
             "arm": arm, "explore": explore, "explore-cluster": explore_cluster,
             "explore-cluster-summary": lambda: explore_cluster(summary=True),
             "transfer": transfer, "budget": budget, "budget-summary": lambda: budget(short=True),
             "precision": precision, "detection": detection, "data-parallel": data_parallel,
             "data-parallel-summary": lambda: data_parallel(summary=True),
             "precision-summary": lambda: precision(summary=True)}


def render(name: str) -> str:
    if name not in RENDERERS:
        raise SystemExit(f"unknown generated block {name!r}; blocks: {', '.join(RENDERERS)}")
    return RENDERERS[name]()


def rewrite(text: str) -> tuple[str, list[str]]:
    """(text with every block re-rendered, names of the blocks whose text changed)."""
    stale = []

    def sub(m):
        body = render(m.group(2)).rstrip("\n") + "\n"
        if body != m.group(3):
            stale.append(m.group(2))
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(sub, text), stale


def check(files=FILES) -> list[str]:
    """``file: block`` for every generated block whose text differs from what its JSON renders."""
    return [f"{f.relative_to(ROOT)}: {name}" for f in files for name in rewrite(f.read_text())[1]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report stale blocks (exit 1 if any)")
    args = p.parse_args(argv)
    if args.check:
        stale = check()
        for line in stale:
            print(f"stale: {line}")
        return 1 if stale else 0
    for f in FILES:
        text, stale = rewrite(f.read_text())
        if stale:
            f.write_text(text)
            print(f"{f.relative_to(ROOT)}: {', '.join(stale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
