"""The README's headline builds, run as a user runs them, with their reports committed.

    python benchmarks/builds.py                 # all (about 4 minutes on 2 cores)
    python benchmarks/builds.py --only default

Writes benchmarks/results/builds.json: per build the command, its wall time, the host CPU, and the
report.json it wrote. README and docs numbers about these builds are rendered from this file by
benchmarks/docs.py, never typed.
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
BUILDS = {
    "default": (["build", "--arch", "squeezenet"], "report.json"),
    "pretrained": (["build", "--arch", "mobilenet_v2", "--weights", "imagenet"], "report.json"),
    "size_only": (["build", "--arch", "squeezenet1_0", "--recipe", "deep-compression", "--size-only"],
                  "size-report.json"),
}


def run_build(name: str, work: Path) -> dict:
    args, report_name = BUILDS[name]
    out = work / name
    t0 = time.perf_counter()
    r = subprocess.run([MOBILEKIT, *args, "--out", str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {r.stderr.strip()[-2000:]}")
    return {"command": "mobilekit " + " ".join(args), "wall_seconds": round(wall, 1),
            "report": json.loads((out / report_name).read_text())}


def main(argv=None) -> int:
    from mobilekit.hostinfo import cpu_info

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(BUILDS), help="comma-separated: " + ", ".join(BUILDS))
    p.add_argument("--out", default=str(RESULTS / "builds.json"))
    args = p.parse_args(argv)
    path = Path(args.out)
    result = json.loads(path.read_text()) if path.is_file() else {"builds": {}}
    work = Path(tempfile.mkdtemp(prefix="mobilekit-builds-"))
    try:
        for name in args.only.split(","):
            if name not in BUILDS:
                raise SystemExit(f"unknown build {name!r}; builds: {', '.join(BUILDS)}")
            entry = run_build(name, work)
            entry["host"] = cpu_info()
            result["builds"][name] = entry
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=1) + "\n")
            print(f"{name}: {entry['command']} in {entry['wall_seconds']:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
