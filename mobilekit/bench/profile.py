"""Per-op time profile by op-prefix sub-models (LiteRT's Python API has no op profiler).

Method: for every op k of the file, a valid sub-model is cut from the flatbuffer that
keeps ops 0..k (the file's execution order) and makes every tensor they produce and
nobody consumes a graph output, so no op is dead code XNNPACK could drop. All prefixes
are timed interleaved, round by round, in one process; op k's time is the median of
prefix k minus the median of prefix k-1. The differences telescope to the full model's
time. They include what changes when an op joins XNNPACK's subgraph (fusion, layout),
and on a noisy host small ops can come out slightly negative: those are reported as
measured, with the spread of the full model's round medians as the noise level.
"""

from __future__ import annotations

import numpy as np

from mobilekit.errors import MobilekitError


def prefix_model(content: bytes, k: int) -> bytes:
    """A .tflite with ops 0..k of ``content`` and every unconsumed produced tensor as an output."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    graph = model.subgraphs[0]
    ops = graph.operators[: k + 1]
    consumed = {int(t) for op in ops for t in op.inputs if t >= 0}
    produced = [int(t) for op in ops for t in op.outputs]
    outputs = [t for t in produced if t not in consumed]
    graph.operators = ops
    graph.outputs = outputs
    model.signatureDefs = None  # signatures name the original outputs
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_profile(content: bytes, *, num_runs: int = 30, rounds: int = 3, num_threads: int = 1,
               use_xnnpack: bool = True, on_round=None) -> dict:
    """{"ops": [{index, op, ms}], "by_op_type": {op: {count, ms, share}}, "total_ms", "noise_ms", "method"}.

    Raises:
        MobilekitError: the file has no ops, or LiteRT cannot load a prefix.
    """
    from mobilekit.bench.harness import benchmark
    from mobilekit.tflite_file import TfliteFile

    names = [op.name for op in TfliteFile(content).ops]
    if not names:
        raise MobilekitError("the model has no ops to profile")
    prefixes = {str(k): prefix_model(content, k) for k in range(len(names) - 1)}
    prefixes[str(len(names) - 1)] = content
    medians: dict[str, list[float]] = {k: [] for k in prefixes}
    for r in range(rounds):
        result = benchmark(prefixes, num_runs=num_runs, warmup_runs=2, num_threads=num_threads,
                           use_xnnpack=use_xnnpack, seed=r)
        for key, stats in result.items():
            medians[key].append(stats["median_ms"])
        if on_round is not None:
            on_round()
    cumulative = [float(np.median(medians[str(k)])) for k in range(len(names))]
    per_op = [{"index": k, "op": name, "ms": cumulative[k] - (cumulative[k - 1] if k else 0.0)}
              for k, name in enumerate(names)]
    total = cumulative[-1]
    by_type: dict[str, dict] = {}
    for row in per_op:
        agg = by_type.setdefault(row["op"], {"count": 0, "ms": 0.0})
        agg["count"] += 1
        agg["ms"] += row["ms"]
    for agg in by_type.values():
        agg["share"] = agg["ms"] / total if total > 0 else 0.0
    full = medians[str(len(names) - 1)]
    return {"ops": per_op, "by_op_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1]["ms"])),
            "total_ms": total, "noise_ms": float(np.max(full) - np.min(full)) if len(full) > 1 else None,
            "method": "op-prefix sub-models timed interleaved; op time = difference of prefix medians",
            "num_runs": num_runs, "rounds": rounds, "num_threads": num_threads}
