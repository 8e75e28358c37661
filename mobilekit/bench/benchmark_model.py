"""Read TFLite ``benchmark_model`` logs (from a phone) into the same JSON entries as a host run.

The format is the tool's documented console output (tensorflow/lite/tools/benchmark/README.md)::

    Num threads: [4]
    Graph: [/data/local/tmp/model.tflite]
    Use xnnpack: [1]
    The input model file size (MB): 4.27635
    Initialized session in 1.03ms.
    count=17 first=37489 curr=28826 min=28729 max=37489 avg=29486.4 std=2061      <- warm-up, us
    count=50 first=29063 curr=28830 min=28673 max=29305 avg=28903.6 std=100       <- timed runs, us
    Inference timings in us: Init: 1030, First inference: 37489, Warmup (avg): 29486.4, Inference (avg): 28903.6
    Memory footprint delta from the start of the tool (MB): init=3.71094 overall=10.1836

Older releases print ``Average inference timings in us: Warmup: W, Init: I, no stats: A``
instead of the ``Inference timings`` line; both are read. Statistics the tool does not
print (median, p90, p99 unless it prints percentiles) are ``None``, never guessed. A log is
untrusted input: every number must parse and lie in a plausible range (:data:`BOUNDS`), else one
MobilekitError names the log, the field and the value.
"""

from __future__ import annotations

import re
from pathlib import Path

from mobilekit.errors import MobilekitError
from mobilekit.schema import BenchEntry, RunStats

_PARAM = re.compile(r"^(?:INFO: )?([A-Za-z#][^:\[\]]*?):\s*\[(.*)\]\s*$")
_STATS = re.compile(r"^(?:INFO: )?count=(\S+)((?:\s+\w+=\S+)+)\s*$")
_TIMINGS = re.compile(r"inference timings in us:\s*(.*)$", re.IGNORECASE)
_MEMORY = re.compile(r"Memory footprint delta from the start of the tool \(MB\):\s*init=(\S+)\s+overall=(\S+)")
_SIZE = re.compile(r"The input model file size \(MB\):\s*(\S+)")


MAX_LOG_BYTES = 64 * 1024 * 1024
_US = (0.0, 1e10)  # a run of up to ~2.8 hours, in microseconds
BOUNDS = {"count": (1, 1e9), "threads": (1, 1024), "size_mb": (0.0, 1e5), "memory_mb": (-1e6, 1e6),
          "std": (0.0, 1e10)}


def _num(text: str, field: str, source: str, kind=float):
    """``text`` as a finite ``kind`` within BOUNDS (microsecond fields: 0 to 1e10), or MobilekitError."""
    low, high = BOUNDS.get(field, _US)
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        value = None
    if value is None or not (low <= value <= high):
        raise MobilekitError(f"{source}: malformed or implausible benchmark_model value {field}={text!r} "
                             f"(expected a number in [{low:g}, {high:g}])")
    return value


def _pairs(text: str, source: str) -> dict[str, float]:
    return {k: _num(v, k, source) for k, v in re.findall(r"(\w+)=(\S+)", text)}


def parse(text: str, source: str = "<log>") -> BenchEntry:
    """One model entry (the same BenchEntry / RunStats records as a host run) from a benchmark_model log.

    Raises:
        MobilekitError: the text has no benchmark_model timing results.
    """
    params, stats, timings, memory, size_mb = {}, [], {}, None, None
    for line in text.splitlines():
        line = line.strip()
        if m := _PARAM.match(line):
            params.setdefault(m.group(1).strip().lower(), m.group(2).strip())
        elif m := _STATS.match(line):
            stats.append({"count": _num(m.group(1), "count", source, int), **_pairs(m.group(2), source)})
        elif m := _TIMINGS.search(line):
            timings = {k.strip().lower(): _num(v, k.strip().lower(), source)
                       for k, v in re.findall(r"([A-Za-z][A-Za-z ()]*?):\s*([^,\s]+)", m.group(1))}
        elif m := _MEMORY.search(line):
            memory = _num(m.group(2), "memory_mb", source)
        elif m := _SIZE.search(line):
            size_mb = _num(m.group(1), "size_mb", source)
    if not stats:
        raise MobilekitError(f"{source}: no benchmark_model timing lines ('count=N first=... avg=...') found")
    main = stats[-1]
    warm = stats[-2] if len(stats) > 1 else None
    threads = _num(params.get("num threads") or params.get("#threads used for cpu inference") or "1", "threads",
                   source, int)
    graph = params.get("graph", "")
    init_us = timings.get("init")
    if init_us is None and (m := re.search(r"Initialized session in (\S+?)ms", text)):
        init_us = _num(m.group(1), "init", source) * 1e3
    ms = lambda us: None if us is None else us / 1e3  # noqa: E731
    mean = main.get("avg", timings.get("inference (avg)", timings.get("no stats")))
    run = RunStats(
        init_ms=ms(init_us), first_inference_ms=ms(timings.get("first inference", (warm or main).get("first"))),
        warmup_mean_ms=ms(warm["avg"] if warm else timings.get("warmup (avg)", timings.get("warmup"))),
        min_ms=ms(main.get("min")), median_ms=ms(main.get("median", main.get("p50"))), mean_ms=ms(mean),
        p90_ms=ms(main.get("p90")), p99_ms=ms(main.get("p99")), std_ms=ms(main.get("std")), runs=main["count"],
        runs_per_s=1e6 / mean if mean else None, rss_increase_kb=None if memory is None else round(memory * 1024),
        xnnpack_partitions=None, ops_outside_xnnpack=[], num_threads=threads,
        use_xnnpack=None if "use xnnpack" not in params else params["use xnnpack"].lower() in ("1", "true"))
    return BenchEntry(path=graph or source, runtime="benchmark_model", source_log=source,
                      size_bytes=None if size_mb is None else round(size_mb * 1024 * 1024), gzip_bytes=None,
                      inputs=[], outputs=[], ops={}, analysis=None, targets={}, runs={str(threads): run})


def read(path: str) -> BenchEntry:
    p = Path(path)
    if not p.is_file():
        raise MobilekitError(f"no such benchmark_model log: {path!r}")
    if p.stat().st_size > MAX_LOG_BYTES:
        raise MobilekitError(f"{path}: {p.stat().st_size:,} bytes is not a benchmark_model log "
                             f"(at most {MAX_LOG_BYTES:,})")
    return parse(p.read_bytes().decode("utf-8", errors="replace"), path)
