"""Design-space exploration benchmarks (`mobilekit explore`), each a real sweep on Fashion-MNIST.

Parts (``--parts``, default all), each writing ``benchmarks/results/explore_<part>/`` (the sweep
folder: results.csv/json, explore.md, plots; .tflite files and Ray state are not committed) and a
summary in ``benchmarks/results/explore.json``:

- ``paper``: the SqueezeNet paper's two sweeps (its Figure 2) one knob at a time around squeeze
  ratio 0.5 / pct3x3 0.5 on squeezenet1_0 (base_e 128, incr_e 128, freq 2): squeeze_ratio in
  {0.125, 0.25, 0.5, 0.75, 1.0}, pct3x3 in {0.01, 0.125, 0.25, 0.5, 0.75, 0.99}, 2 seeds a point,
  a fixed budget (int8-ptq, 8,000 training images at 32x32, 2 epochs, the full 10,000 test set).
- ``constrained``: three families (squeezenet1_1 with slim fire modules, mobilenet_v1, shufflenet_v2)
  x pruning levels, targets 100 KiB gzip'd and 30 FPS on snapdragon-450: the most accurate design
  that meets both (screening drops the rest before training).
- ``dominate``: today's default build (`mobilekit build --arch squeezenet`, full data) in the same
  run, then a sweep over harder pruning of the same net: a design with int8 accuracy >= the
  default's at <= half its gzip size, or the front that shows there is none.
- ``overhead``: per-point wall time through `explore` (Ray, one point at a time) vs direct
  `mobilekit build` processes of the same tiny configs, measured in the same run.

Usage: python benchmarks/explore_squeezenet.py [--parts paper,constrained,dominate,overhead]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))


def cpu_features() -> dict:
    """The host, in the keys explore.json has always used (from mobilekit.hostinfo)."""
    from mobilekit.hostinfo import cpu_info

    c = cpu_info()
    return {"model": c["model"], "cores": c["cpus"], "avx2": "avx2" in c["features"],
            "avx512f": "avx512f" in c["features"], "avx512_vnni": "avx512_vnni" in c["features"],
            "amx": "amx_int8" in c["features"], "summary": c["summary"]}


def run(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return r, time.perf_counter() - t0


def sweep(name: str, args: list[str]) -> dict:
    out = RESULTS / f"explore_{name}"
    run([MOBILEKIT, "explore", *args, "--out", str(out)])
    return json.loads((out / "results.json").read_text())


def paper() -> dict:
    doc = sweep("paper", ["--arch", "squeezenet1_0", "--search", "oneatatime", "--seeds", "2",
                          "--squeeze-ratio", "0.5", "--pct3x3", "0.5",
                          "--space", "squeeze_ratio=0.125,0.25,0.5,0.75,1.0",
                          "--space", "pct3x3=0.01,0.125,0.25,0.5,0.75,0.99",
                          "--recipe", "int8-ptq", "--input-size", "32", "--limit-train", "8000",
                          "--epochs", "2", "--latency-runs", "20"])
    return {"counts": doc["counts"], "saturation": doc["saturation"]}


# What the SqueezeNet paper reports for the same sweeps (ImageNet top-5, its Figure 2 / Section 5).
PAPER = {"squeeze_ratio": "ImageNet top-5 rises from 80.3% at SR 0.125 to 86.0% at SR 0.75 and saturates there",
         "pct3x3": "ImageNet top-5 saturates at 50% 3x3 filters, no gain above it"}


CONSTRAINED_SPEC = """\
# Three families x pruning levels; the fire modules of squeezenet1_1 are slimmed (base_e/incr_e 32).
base: {input_size: 48, limit_train: 12000, epochs: 2, prune_epochs: 0.5, qat_epochs: 0.25, incr_e: 32,
       latency_runs: 20}
space:
  arch: [squeezenet1_1, mobilenet_v1, shufflenet_v2]
  base_e: [32, 64]
  alpha: [0.25, 0.5]
  scale: [0.5]
  sparsity: [0.5, 0.75]
targets: {max_size_kb: 100, fps: 30}
device: snapdragon-450
"""


def constrained() -> dict:
    spec = RESULTS / "explore_constrained.yaml"
    spec.write_text(CONSTRAINED_SPEC)
    doc = sweep("constrained", ["--spec", str(spec)])
    rec = next((r for r in doc["rows"] if r["point"] == doc["recommended"]), None)
    return {"spec": CONSTRAINED_SPEC, "counts": doc["counts"], "screened_out": doc["screened_out"],
            "recommended": rec}


DOMINATE_SWEEPS = {
    # Harder magnitude pruning of the default net, with twice the pruning fine-tune.
    "dominate": ["--space", "sparsity=0.8,0.9", "--prune-epochs", "1.0"],
    # Deep Compression (75% pruning + weight sharing + PCQAT, the recipe's own fine-tune budgets), at 8 or 16
    # clusters and 1.5 or 3 float epochs.
    "dominate_dc": ["--recipe", "deep-compression", "--space", "clusters=8,16", "--space", "epochs=1.5,3"],
}


def dominate() -> dict:
    default_dir = RESULTS / "explore_dominate_default"
    _, seconds = run([MOBILEKIT, "build", "--arch", "squeezenet", "--out", str(default_dir)])
    default = json.loads((default_dir / "report.json").read_text())
    shutil.rmtree(default_dir)
    base = {"accuracy_int8": default["accuracy"]["tflite_int8"], "size_gzip_bytes": default["sizes"]["int8_gzip_bytes"],
            "seconds": round(seconds, 1), "sha256": default["sha256"]}
    rows = []
    for name, args in DOMINATE_SWEEPS.items():
        doc = sweep(name, ["--arch", "squeezenet1_1", *args,
                           "--max-size-kb", f"{base['size_gzip_bytes'] / 2 / 1024:.3f}"])
        rows += [{**r, "sweep": name} for r in doc["rows"]]
    winners = [r for r in rows if r["status"] == "ok" and r["accuracy_int8"] >= base["accuracy_int8"]
               and r["size_gzip_bytes"] <= base["size_gzip_bytes"] / 2]
    return {"default": base, "rows": rows, "dominating": winners,
            "verdict": "found" if winners else "none in the space searched: see the fronts in explore_dominate*/"}


def overhead(points: int = 3) -> dict:
    values = ["0.125", "0.25", "0.5"][:points]
    tiny = ["--arch", "squeezenet1_1", "--limit-train", "2000", "--limit-test", "500", "--input-size", "32",
            "--epochs", "0.3", "--prune-epochs", "0.1", "--qat-epochs", "0.1", "--latency-runs", "10",
            "--min-stage-steps", "0"]
    scratch = RESULTS / "explore_overhead_scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    direct = []
    for v in values:
        _, s = run([MOBILEKIT, "build", *tiny, "--squeeze-ratio", v, "--out", str(scratch / f"build_{v}")])
        direct.append(s)
    _, total = run([MOBILEKIT, "explore", *tiny, "--space", f"squeeze_ratio={','.join(values)}",
                    "--max-concurrent", "1", "--cpus-per-trial", "2", "--out", str(scratch / "sweep")])
    from mobilekit.explore.results import collect

    in_trial = [r.get("point_seconds") for r in collect(scratch / "sweep")]
    shutil.rmtree(scratch)
    return {"points": points, "direct_build_seconds": [round(s, 1) for s in direct],
            "explore_total_seconds": round(total, 1),
            "per_point_direct": round(sum(direct) / points, 1), "per_point_explore": round(total / points, 1),
            "overhead_ratio": round(total / sum(direct) - 1, 3), "in_trial_seconds": in_trial,
            "note": "explore's total includes Ray's start, screening and rendering; the direct builds each pay "
                    "a process start and TensorFlow import, as a user running them one by one would"}


def _design(row: dict) -> str:
    if row["sweep"] == "dominate":
        return f"prune-int8 sparsity {row['sparsity']:g}"
    return f"deep-compression {row['clusters']} clusters, {row['epochs']:g} epochs"


def readme_section(summary: dict) -> str:
    """The README's explore section, written from explore.json (so its numbers are the committed ones)."""
    host = next(iter(summary.values()))["host"]
    out = [f"Measured with `python benchmarks/explore_squeezenet.py` on {host['model']} "
           f"({host['cores']} cores, AVX-512 VNNI {'yes' if host['avx512_vnni'] else 'no'}):", ""]
    if "paper" in summary:
        p = summary["paper"]
        for knob, s in p["saturation"].items():
            curve = ", ".join(f"{c['value']:g}: {c['mean']:.2%}" for c in s["curve"])
            out.append(f"- SqueezeNet paper sweep, `{knob}` (2 seeds, int8 accuracy): {curve}; noise sd "
                       f"{s['noise_std']:.2%}; **saturates at {s['saturation_value']:g}** (paper: {PAPER[knob]}).")
    if "paper" in summary:
        out.append("  Both saturate earlier than in the paper: 10-class Fashion-MNIST at 32x32 is a far easier task than "
                   "ImageNet, so extra squeeze or 3x3 capacity stops paying sooner at this budget.")
    if "constrained" in summary:
        c = summary["constrained"]
        r = c["recommended"]
        n = c["counts"]
        what = (f"**{r['arch']}** " + " ".join(f"{k}={r[k]}" for k in ("base_e", "alpha", "scale", "sparsity")
                                              if r.get(k) is not None)
                + f": int8 {r['accuracy_int8']:.2%}, {r['size_gzip_bytes'] / 1024:.1f} KiB gzip'd, "
                  f"{r['latency_device_ms']:.2f} ms predicted on snapdragon-450") if r else "none"
        out.append(f"- Constrained search (12,000 images, 2 epochs at 48x48: a small budget), 3 families, <= 100 KiB "
                   f"gzip'd and >= 30 FPS on snapdragon-450: "
                   f"{n['screened_out']} of {sum(n.values())} points screened out before training, {n['ok']} trained; "
                   f"the most accurate that meets both: {what}.")
    if "dominate" in summary:
        d = summary["dominate"]
        base = d["default"]
        best = max((r for r in d["rows"] if r["status"] == "ok"), key=lambda r: r["accuracy_int8"], default=None)
        rows = "; ".join(f"{_design(r)}: {r['accuracy_int8']:.2%} at {r['size_gzip_bytes'] / 1024:.1f} KiB"
                         for r in d["rows"] if r["status"] == "ok")
        out.append(f"- Beating the default build ({base['accuracy_int8']:.2%} int8 at {base['size_gzip_bytes'] / 1024:.1f} "
                   f"KiB gzip'd, same run): {rows} -> "
                   + (f"**dominated** by {_design(max(d['dominating'], key=lambda r: r['accuracy_int8']))}"
                      if d["dominating"]
                      else f"not dominated in this space (best {best['accuracy_int8']:.2%})" if best else "no ok point")
                   + ".")
    if "overhead" in summary:
        o = summary["overhead"]
        out.append(f"- Ray overhead: {o['points']} tiny points one at a time took {o['explore_total_seconds']:.1f} s "
                   f"through `explore` against {sum(o['direct_build_seconds']):.1f} s as separate `mobilekit build` "
                   f"runs: **{o['overhead_ratio']:+.1%}** (goal <= +10%).")
    return "\n".join(out)


PARTS = {"paper": paper, "constrained": constrained, "dominate": dominate, "overhead": overhead}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--readme", action="store_true", help="print the README section from explore.json and exit")
    args = p.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    summary_path = RESULTS / "explore.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if args.readme:
        print(readme_section(summary))
        return 0
    for name in args.parts.split(","):
        t0 = time.perf_counter()
        result = PARTS[name]()
        result["wall_seconds"] = round(time.perf_counter() - t0, 1)
        result["host"] = cpu_features()
        summary[name] = result
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"{name}: done in {result['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
