"""Run the harness on untrusted .tflite files in a child process.

A corrupt flatbuffer can crash LiteRT natively (a segfault takes the whole Python
process with it). ``mobilekit bench`` therefore validates each file in Python first
(``TfliteFile``) and then loads, runs and times the files in a child
``python -m mobilekit.bench.isolated``. The child announces each file before it
loads it, so a crash is reported against the file that caused it, as one line.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np

from mobilekit.errors import MobilekitError


def _child(spec: dict) -> None:
    from mobilekit.bench.harness import benchmark, is_tflite, load_model

    def say(**msg):
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()

    contents = {}
    for path in spec["paths"]:
        with open(path, "rb") as f:
            contents[path] = f.read()
    inputs = None
    if spec.get("input"):
        array = np.load(spec["input"], allow_pickle=False)
        inputs = {path: [array] for path in spec["paths"]}
    for path, content in contents.items():  # probe: load and run each once on its own
        say(loading=path)
        try:
            probe = load_model(path, content, 1, spec["use_xnnpack"], (inputs or {}).get(path))
        except MobilekitError as e:
            say(error=f"{path}: {e}")
            return
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            say(error=f"{path}: cannot run it: {first}")
            return
        del probe
    say(loading=None)
    results = {}
    for threads in spec["num_threads"]:
        results[str(threads)] = benchmark(contents, num_runs=spec["num_runs"], warmup_runs=spec["warmup_runs"],
                                          min_secs=spec["min_secs"], num_threads=threads,
                                          use_xnnpack=spec["use_xnnpack"], inputs=inputs, seed=spec["seed"])
    if spec.get("profile"):
        from mobilekit.bench.profile import op_profile

        results["profile"] = {}
        for path, content in contents.items():
            if is_tflite(content):
                say(loading=path)  # its prefix sub-models are new files to LiteRT
                results["profile"][path] = op_profile(content, num_runs=max(30, spec["num_runs"]), rounds=5,
                                                      num_threads=spec["num_threads"][0],
                                                      use_xnnpack=spec["use_xnnpack"])
    say(results=results)


def run_isolated(paths: list[str], *, num_runs: int, warmup_runs: int, min_secs: float,
                 num_threads: list[int], use_xnnpack: bool, input_path: str | None = None,
                 seed: int = 0, profile: bool = False, timeout: float | None = None) -> dict:
    """``{threads: {path: stats}}`` (and ``"profile": {path: op profile}``) from a child process;
    a crash becomes a MobilekitError.

    Raises:
        MobilekitError: LiteRT refused or crashed on a file (named), or the child failed.
    """
    spec = {"paths": list(paths), "num_runs": num_runs, "warmup_runs": warmup_runs, "min_secs": min_secs,
            "num_threads": list(num_threads), "use_xnnpack": use_xnnpack, "input": input_path, "seed": seed,
            "profile": profile}
    try:
        proc = subprocess.run([sys.executable, "-m", "mobilekit.bench.isolated"], input=json.dumps(spec),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MobilekitError(f"benchmark timed out after {timeout:g} s") from None
    loading, result = None, None
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue  # native libraries may print to stdout
        if "error" in msg:
            raise MobilekitError(msg["error"])
        if "loading" in msg:
            loading = msg["loading"]
        if "results" in msg:
            result = msg["results"]
    if proc.returncode == 0 and result is not None:
        return result
    how = (f"crashed ({signal.Signals(-proc.returncode).name})" if proc.returncode < 0
           else f"failed (exit {proc.returncode})")
    if loading is not None:
        raise MobilekitError(f"{loading}: LiteRT {how} loading or running it; the file is corrupt or unsupported")
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    raise MobilekitError(f"the benchmark process {how}" + (f": {last}" if last else ""))


if __name__ == "__main__":
    _child(json.loads(sys.stdin.read()))
