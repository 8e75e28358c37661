"""The accuracy budget against today's fixed recipe: what each build chose, what it kept, what it cost.

    python benchmarks/budget.py                  # the default build and the folder set-up (about 35 min on 2 cores)
    python benchmarks/budget.py --scratch        # also the six scratch archs on Fashion-MNIST (about an hour more)
    python benchmarks/budget.py --only "efficientnet_lite0 budget"

Every build runs through the CLI as a user runs it, twice where it matters: with the default accuracy budget (1 point,
no --sparsity) and with the recipe fixed as before budgets existed (`--sparsity 0.5`, no budget), one after the other
in the same run, so the time ratio compares. The folder set-up is the one benchmarks/transfer.py uses: 100
Fashion-MNIST training images per class written as class folders, 96 px, and a separate test folder of 2,000 images
(200 per class from the test split). Writes benchmarks/results/budget.json after every build (a rerun skips what is
there; --force redoes it); docs/accuracy-budget.md's table is rendered from it by benchmarks/docs.py.
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
FIXED = ["--sparsity", "0.5"]  # the default recipe as it was: prune-int8 at 50%, no budget
FOLDER = ["--data", "{train}", "--test-data", "{test}", "--input-size", "96"]
SCRATCH = ["--epochs", "10", "--batch-size", "32"]  # benchmarks/transfer.py's from-scratch budget on the folder
BUILDS = {
    "squeezenet budget": ["--arch", "squeezenet"],
    "squeezenet fixed": ["--arch", "squeezenet", *FIXED],
    "efficientnet_lite0 budget": ["--arch", "efficientnet_lite0", "--weights", "imagenet", *FOLDER],
    "efficientnet_lite0 fixed": ["--arch", "efficientnet_lite0", "--weights", "imagenet", *FOLDER, *FIXED],
    "mobilenet_v2 budget": ["--arch", "mobilenet_v2", "--weights", "imagenet", *FOLDER],
    "mobilenet_v2 fixed": ["--arch", "mobilenet_v2", "--weights", "imagenet", *FOLDER, *FIXED],
    "mobilenet_v2 scratch budget": ["--arch", "mobilenet_v2", *FOLDER, *SCRATCH],
}
SCRATCH_ARCHS = ("squeezenet1_0", "mobilenet_v1", "mobilenet_v2", "shufflenet_v1", "shufflenet_v2", "efficientnet_lite0")
for _arch in SCRATCH_ARCHS:
    BUILDS[f"{_arch} fashion-mnist budget"] = ["--arch", _arch]
    BUILDS[f"{_arch} fashion-mnist fixed"] = ["--arch", _arch, *FIXED]
CORE = [name for name in BUILDS if "fashion-mnist" not in name]


def folders(work: Path) -> dict:
    from mobilekit.data import fashion_mnist_folder

    return {"train": str(fashion_mnist_folder(work / "train", 100, "train")),
            "test": str(fashion_mnist_folder(work / "test", 200, "test"))}


def run(name: str, paths: dict, work: Path) -> dict:
    args = [a.format(**paths) for a in BUILDS[name]]
    out = work / name.replace(" ", "_")
    t0 = time.perf_counter()
    r = subprocess.run([MOBILEKIT, "build", *args, "--out", str(out), "--latency-runs", "20"], capture_output=True,
                       text=True)
    wall = round(time.perf_counter() - t0, 1)
    if r.returncode != 0:
        raise SystemExit(f"{name} failed: {r.stderr.strip()[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    acc = report["accuracy"]
    command = "mobilekit build " + " ".join(BUILDS[name]).replace("{train}", "TRAIN").replace("{test}", "TEST")
    return {"command": command, "wall_seconds": wall, "float": acc["keras_float"], "int8": acc["tflite_int8"],
            "drop_points": round(100 * (acc["keras_float"] - acc["tflite_int8"]), 2), "test_images": acc["test_images"],
            "int8_bytes": report["sizes"]["int8_tflite_bytes"], "int8_gzip_bytes": report["sizes"]["int8_gzip_bytes"],
            "int8_zeros": report["sparsity"]["int8_weights"], "budget": report.get("budget"),
            "stages": {k: v for k, v in acc.items() if k.startswith("keras_")},
            "stage_seconds": report["stage_seconds"], "warnings": report.get("warnings") or [],
            # each training stage's first step (its trace, unless the stage reused a traced pruning graph)
            "first_step_seconds": {k: round(v["first_step_s"], 2) for k, v in (report.get("throughput") or {}).items()
                                   if "first_step_s" in v and not k.startswith(("train", "transfer"))}}


def _chosen(row: dict) -> str:
    b = row["budget"]
    if not b:
        return "fixed 50%"
    c = b["chosen"]
    return (f"{c['sparsity']:.0%} {c['scheme']} ({len(b['candidates'])} tried"
            + ("" if b["met"] else ", NOT met") + ")")


def to_markdown(result: dict) -> str:
    rows, host = result["rows"], result["host"]
    lines = [f"Measured with `python benchmarks/budget.py` on {host['model']} ({host['cpus']} cores; "
             f"{host['summary']}). TRAIN: 100 Fashion-MNIST "
             "images per class as class folders; TEST: 2,000 others (200 per class); float and int8 accuracies on the "
             "test set (Fashion-MNIST builds: its 10,000 test images); the budget is judged on a validation split of "
             "the training images, never on these.", "",
             "| build | compression (budget: candidates tried) | float | int8 | lost | int8 gzip | zeros | build time |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| `{r['command']}` | {_chosen(r)} | {r['float']:.2%} | {r['int8']:.2%} | "
                     f"{r['drop_points']:.2f} | {r['int8_gzip_bytes'] / 1024:,.0f} KiB | {r['int8_zeros']:.0%} | "
                     f"{r['wall_seconds']:.0f} s |")
    pairs = [(n, n.replace(" budget", " fixed")) for n in rows if n.endswith(" budget") and
             n.replace(" budget", " fixed") in rows]
    if pairs:
        lines += ["", "Against the fixed recipe, built just before or after on the same machine: " + "; ".join(
            f"{a.replace(' budget', '')}: int8 {100 * (rows[a]['int8'] - rows[b]['int8']):+.2f} points, build time "
            f"x{rows[a]['wall_seconds'] / rows[b]['wall_seconds']:.2f}" for a, b in pairs) + "."]
    return "\n".join(lines)


def summary(result: dict) -> str:
    """The README's line: what the default budget chose and kept where the fixed recipe lost."""
    rows = result["rows"]
    parts = []
    for arch in ("efficientnet_lite0", "mobilenet_v2"):
        a, b = rows.get(f"{arch} budget"), rows.get(f"{arch} fixed")
        if a and b:
            parts.append(f"`{arch} --weights imagenet` on 100 images per class at 96 px ships {_chosen(a)}: int8 "
                         f"{a['int8']:.2%} against float {a['float']:.2%} on 2,000 test images (the fixed 50% "
                         f"recipe: {b['int8']:.2%})")
    a, b = rows.get("squeezenet budget"), rows.get("squeezenet fixed")
    if a and b:
        parts.append(f"the default SqueezeNet build ships {_chosen(a)}: int8 {a['int8']:.2%}, build time "
                     f"x{a['wall_seconds'] / b['wall_seconds']:.2f} of the fixed recipe's, built just after it")
    noisy = [n.replace(" budget", "") for n, r in rows.items() if n.endswith(" budget") and r["budget"].get("noise")]
    if noisy:
        parts.append(f"on 100 validation images the split cannot resolve a 1-point budget, and the report says so "
                     f"({', '.join(noisy)})")
    return ("Accuracy budget ([docs/accuracy-budget.md](docs/accuracy-budget.md); default 1 point, judged on a "
            "validation split): " + "; ".join(parts) + ".")


def main(argv=None) -> int:
    from mobilekit.hostinfo import cpu_info

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated build names: " + ", ".join(BUILDS))
    p.add_argument("--scratch", action="store_true", help="also the six scratch archs on Fashion-MNIST")
    p.add_argument("--force", action="store_true", help="redo builds already in the results")
    p.add_argument("--out", default=str(RESULTS / "budget.json"))
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else CORE + ([n for n in BUILDS if n not in CORE] if args.scratch else [])
    for name in names:
        if name not in BUILDS:
            raise SystemExit(f"unknown build {name!r}; builds: {', '.join(BUILDS)}")
    path = Path(args.out)
    result = json.loads(path.read_text()) if path.is_file() else {"rows": {}}
    result["host"] = cpu_info()
    work = Path(tempfile.mkdtemp(prefix="mobilekit-budget-"))
    try:
        paths = folders(work)
        for name in names:
            if name in result["rows"] and not args.force:
                continue
            print(f"{name} ...", flush=True)
            result["rows"][name] = run(name, paths, work)
            result["rows"] = {n: result["rows"][n] for n in BUILDS if n in result["rows"]}
            path.write_text(json.dumps(result, indent=1) + "\n")
            r = result["rows"][name]
            print(f"  float {r['float']:.2%} int8 {r['int8']:.2%} ({_chosen(r)}), {r['wall_seconds']:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
