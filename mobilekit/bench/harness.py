"""The benchmark harness: batch-1 timing of one or more .tflite files, interleaved run by run.

What it reports follows TFLite's ``benchmark_model``: init time, first inference,
warm-up mean, then steady-state min / median / mean / p90 / p99 / std, plus runs per
second and the resident-memory increase of loading and first running each model.
Several models are timed in the same loop, one invoke of each per round, so slow
phases of a noisy machine hit all of them alike and their ratio stays fair.

This runs in the calling process: use it for files you made. ``mobilekit bench``
runs it in a child process (``mobilekit.bench.isolated``) because a corrupt file
can crash the interpreter natively.
"""

from __future__ import annotations

import time

import numpy as np

from mobilekit.errors import MobilekitError
from mobilekit.litert import delegate_partitions, is_tflite, make_interpreter, random_inputs  # noqa: F401


def rss_kb() -> int:
    """Current resident set size of this process in KiB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def steady_stats(times_ms: np.ndarray) -> dict:
    return {"min_ms": float(times_ms.min()), "median_ms": float(np.median(times_ms)),
            "mean_ms": float(times_ms.mean()), "p90_ms": float(np.percentile(times_ms, 90)),
            "p99_ms": float(np.percentile(times_ms, 99)), "std_ms": float(times_ms.std()),
            "runs": int(times_ms.size), "runs_per_s": float(1e3 / times_ms.mean())}


class _OnnxLoaded:
    """An onnxruntime session timed like a LiteRT interpreter (peers; CPU provider)."""

    def __init__(self, key: str, content: bytes, num_threads: int, inputs, seed: int):
        import onnxruntime as ort

        rss0 = rss_kb()
        t0 = time.perf_counter()
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise MobilekitError(f"onnxruntime cannot load the model: {str(e).strip().splitlines()[0]}") from None
        self.init_ms = (time.perf_counter() - t0) * 1e3
        self.key = key
        rng = np.random.default_rng(seed)
        feeds = {}
        for i, d in enumerate(self.session.get_inputs()):
            if inputs is not None:
                feeds[d.name] = inputs[i]
                continue
            if not all(isinstance(n, int) for n in d.shape):
                raise MobilekitError(f"input {d.name!r} has a dynamic shape {d.shape}; pass --input FILE.npy")
            if "int8" in d.type:
                feeds[d.name] = rng.integers(-128, 128, d.shape, dtype=np.int8)
            else:
                feeds[d.name] = rng.random(d.shape).astype(np.float32)
        self.feeds = feeds
        t0 = time.perf_counter()
        self.session.run(None, feeds)
        self.first_ms = (time.perf_counter() - t0) * 1e3
        self.rss_increase_kb = max(0, rss_kb() - rss0)
        self.partitions, self.outside = None, []

    def invoke_ms(self) -> float:
        t0 = time.perf_counter()
        self.session.run(None, self.feeds)
        return (time.perf_counter() - t0) * 1e3


def load_model(key: str, content: bytes, num_threads: int = 1, use_xnnpack: bool = True, inputs=None,
               seed: int = 0):
    """Load ``content`` (LiteRT for .tflite bytes, onnxruntime otherwise), set its inputs and run it
    once, timing both; the result's ``invoke_ms()`` times one more run.

    Raises:
        MobilekitError: the runtime cannot load the model.
    """
    if is_tflite(content):
        return _Loaded(key, content, num_threads, use_xnnpack, inputs, seed)
    return _OnnxLoaded(key, content, num_threads, inputs, seed)


class _Loaded:
    def __init__(self, key: str, content: bytes, num_threads: int, use_xnnpack: bool, inputs, seed: int):

        rss0 = rss_kb()
        t0 = time.perf_counter()
        self.interpreter = make_interpreter(content, num_threads, use_xnnpack)
        self.init_ms = (time.perf_counter() - t0) * 1e3
        self.key = key
        details = self.interpreter.get_input_details()
        self.inputs = list(inputs) if inputs is not None else random_inputs(self.interpreter, seed)
        for d, value in zip(details, self.inputs):
            self.interpreter.set_tensor(d["index"], value)
        t0 = time.perf_counter()
        self.interpreter.invoke()
        self.first_ms = (time.perf_counter() - t0) * 1e3
        self.rss_increase_kb = max(0, rss_kb() - rss0)
        self.partitions, self.outside = delegate_partitions(self.interpreter)

    def invoke_ms(self) -> float:
        t0 = time.perf_counter()
        self.interpreter.invoke()
        return (time.perf_counter() - t0) * 1e3


def benchmark(contents: dict[str, bytes], *, num_runs: int = 50, warmup_runs: int = 1, min_secs: float = 0.0,
              num_threads: int = 1, use_xnnpack: bool = True, inputs: dict | None = None,
              seed: int = 0) -> dict[str, dict]:
    """Time every model of ``contents`` ({key: .tflite or .onnx bytes}) at batch 1, interleaved.

    ONNX models (peers) run in onnxruntime's CPU provider with the same thread count.

    Each model gets ``warmup_runs`` untimed-for-statistics runs (their mean is reported),
    then rounds of one timed ``invoke()`` per model until every model has ``num_runs``
    runs and ``min_secs`` have passed.

    Example: ``benchmark({"a": a_bytes, "b": b_bytes}, num_runs=100)["a"]["median_ms"]``.

    Args:
        inputs: optional {key: [array per model input]}; random in each dtype's range otherwise.

    Raises:
        MobilekitError: a bad setting or a model LiteRT cannot load.
    """
    if isinstance(num_runs, bool) or not isinstance(num_runs, int) or num_runs < 1:
        raise MobilekitError(f"num_runs must be a positive int; received num_runs={num_runs!r}")
    if isinstance(warmup_runs, bool) or not isinstance(warmup_runs, int) or warmup_runs < 0:
        raise MobilekitError(f"warmup_runs must be a non-negative int; received warmup_runs={warmup_runs!r}")
    if not (isinstance(min_secs, (int, float)) and np.isfinite(min_secs) and min_secs >= 0):
        raise MobilekitError(f"min_secs must be a non-negative number; received min_secs={min_secs!r}")
    loaded = [load_model(key, content, num_threads, use_xnnpack, (inputs or {}).get(key), seed)
              for key, content in contents.items()]
    warmup = {m.key: [m.invoke_ms() for _ in range(warmup_runs)] for m in loaded}
    times: dict[str, list[float]] = {m.key: [] for m in loaded}
    t_start = time.perf_counter()
    rounds = 0
    while rounds < num_runs or time.perf_counter() - t_start < min_secs:
        order = loaded if rounds % 2 == 0 else loaded[::-1]  # neither model always goes first
        for m in order:
            times[m.key].append(m.invoke_ms())
        rounds += 1
    results = {}
    for m in loaded:
        results[m.key] = {
            "init_ms": m.init_ms, "first_inference_ms": m.first_ms,
            "warmup_mean_ms": float(np.mean(warmup[m.key])) if warmup[m.key] else None,
            **steady_stats(np.asarray(times[m.key])),
            "rss_increase_kb": m.rss_increase_kb,
            "xnnpack_partitions": m.partitions, "ops_outside_xnnpack": m.outside,
            "num_threads": num_threads, "use_xnnpack": use_xnnpack, "warmup_runs": warmup_runs,
            "num_runs": num_runs, "min_secs": min_secs,
        }
    return results
