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
import threading
import time

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
    profiled = [p for p, c in contents.items() if is_tflite(c)] if spec.get("profile") else []
    rounds = 5
    say(progress={"total": len(spec["num_threads"]) + rounds * len(profiled)})
    for threads in spec["num_threads"]:
        say(progress={"info": f"timing at {threads} thread(s)"})
        results[str(threads)] = benchmark(contents, num_runs=spec["num_runs"], warmup_runs=spec["warmup_runs"],
                                          min_secs=spec["min_secs"], num_threads=threads,
                                          use_xnnpack=spec["use_xnnpack"], inputs=inputs, seed=spec["seed"])
        say(progress={"advance": 1})
    if spec.get("profile"):
        from mobilekit.bench.profile import op_profile

        results["profile"] = {}
        for path in profiled:
            say(loading=path)  # its prefix sub-models are new files to LiteRT
            say(progress={"info": f"profiling {path}"})
            results["profile"][path] = op_profile(contents[path], num_runs=max(30, spec["num_runs"]), rounds=rounds,
                                                  num_threads=spec["num_threads"][0], use_xnnpack=spec["use_xnnpack"],
                                                  on_round=lambda: say(progress={"advance": 1}))
    say(results=results)


class _ChildProgress:
    """The child's progress messages as a bar (shown only once the work has taken a few seconds)."""

    def __init__(self, delay: float = 3.0):
        self.delay, self.t0, self.total, self.done, self.info = delay, time.monotonic(), None, 0, ""
        self._bar = None

    def __enter__(self):
        return self

    def update(self, p: dict) -> None:
        self.total = p.get("total", self.total)
        self.done += p.get("advance", 0)
        self.info = p.get("info", self.info)
        if self._bar is None and self.total and time.monotonic() - self.t0 > self.delay:
            from rich.errors import LiveError

            from mobilekit.progress import progress

            self._bar = progress()
            try:
                self._bar.start()
            except LiveError:  # an outer bar is live and shows the progress
                self.delay = float("inf")
                self._bar = None
                return
            self._task = self._bar.add_task("bench", total=self.total, completed=self.done, info=self.info)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, info=self.info)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.live.transient = True  # gone once done: the tables or the error follow
            self._bar.stop()


def run_isolated(paths: list[str], *, num_runs: int, warmup_runs: int, min_secs: float,
                 num_threads: list[int], use_xnnpack: bool, input_path: str | None = None,
                 seed: int = 0, profile: bool = False, timeout: float = 1800.0) -> dict:
    """``{threads: {path: stats}}`` (and ``"profile": {path: op profile}``) from a child process;
    a crash becomes a MobilekitError.

    Raises:
        MobilekitError: LiteRT refused or crashed on a file (named), or the child failed.
    """
    spec = {"paths": list(paths), "num_runs": num_runs, "warmup_runs": warmup_runs, "min_secs": min_secs,
            "num_threads": list(num_threads), "use_xnnpack": use_xnnpack, "input": input_path, "seed": seed,
            "profile": profile}
    proc = subprocess.Popen([sys.executable, "-m", "mobilekit.bench.isolated"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(spec))
    proc.stdin.close()
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)
    reader.start()
    fired = threading.Event()
    watchdog = threading.Timer(timeout, lambda: (fired.set(), proc.kill()))  # a hung or runaway child is killed
    watchdog.start()
    loading, result, error = None, None, None
    try:
        with _ChildProgress() as bar:
            for line in proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue  # native libraries may print to stdout
                if not isinstance(msg, dict):
                    continue
                error = msg.get("error", error)
                loading = msg.get("loading", loading)
                result = msg.get("results", result)
                if "progress" in msg:
                    bar.update(msg["progress"])
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    if error is not None:
        raise MobilekitError(error)
    if fired.is_set():
        raise MobilekitError(f"the benchmark process took over {timeout:g} s and was killed "
                             "(raise --timeout for a long --profile or many models)")
    if proc.returncode == 0 and result is not None:
        return result
    how = (f"crashed ({signal.Signals(-proc.returncode).name})" if proc.returncode < 0
           else f"failed (exit {proc.returncode})")
    if loading is not None:
        raise MobilekitError(f"{loading}: LiteRT {how} loading or running it; the file is corrupt or unsupported")
    text = "".join(stderr).strip()
    last = text.splitlines()[-1] if text else ""
    raise MobilekitError(f"the benchmark process {how}" + (f": {last}" if last else ""))


if __name__ == "__main__":
    _child(json.loads(sys.stdin.read()))
