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
print (median, p90, p99 unless it prints percentiles) are ``None``, never guessed.
"""

from __future__ import annotations

import re
from pathlib import Path

from mobilekit.errors import MobilekitError
from mobilekit.schema import BenchEntry, RunStats

_PARAM = re.compile(r"^(?:INFO: )?([A-Za-z#][^:\[\]]*?):\s*\[(.*)\]\s*$")
_STATS = re.compile(r"^(?:INFO: )?count=(\d+)((?:\s+\w+=[-\d.e+]+)+)\s*$")
_TIMINGS = re.compile(r"inference timings in us:\s*(.*)$", re.IGNORECASE)
_MEMORY = re.compile(r"Memory footprint delta from the start of the tool \(MB\):\s*init=([\d.]+)\s+overall=([\d.]+)")
_SIZE = re.compile(r"The input model file size \(MB\):\s*([\d.]+)")


def _pairs(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.e+]+)", text)}


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
            stats.append({"count": int(m.group(1)), **_pairs(m.group(2))})
        elif m := _TIMINGS.search(line):
            timings = {k.strip().lower(): float(v) for k, v in re.findall(r"([A-Za-z][A-Za-z ()]*?):\s*([\d.]+)",
                                                                          m.group(1))}
        elif m := _MEMORY.search(line):
            memory = float(m.group(2))
        elif m := _SIZE.search(line):
            size_mb = float(m.group(1))
    if not stats:
        raise MobilekitError(f"{source}: no benchmark_model timing lines ('count=N first=... avg=...') found")
    main = stats[-1]
    warm = stats[-2] if len(stats) > 1 else None
    threads = int(params.get("num threads") or params.get("#threads used for cpu inference") or 1)
    graph = params.get("graph", "")
    init_us = timings.get("init")
    if init_us is None and (m := re.search(r"Initialized session in ([\d.]+)ms", text)):
        init_us = float(m.group(1)) * 1e3
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
    return parse(p.read_text(errors="replace"), path)
