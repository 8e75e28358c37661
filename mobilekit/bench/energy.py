"""Energy per frame and target checks from a .tflite's analysis (no hardware counters).

Model (docs/energy-model.md), with Horowitz's 45 nm figures (ISSCC 2014):
- compute: every MAC is one multiply and one add; int8 ops multiply in int8 and
  accumulate in int32, float ops in fp32;
- memory: every weight byte is read once per frame, and every op reads its input
  activations and writes its outputs once, in 64-bit words; all of it from on-chip SRAM
  when weights + peak activations fit the SRAM budget, otherwise from DRAM.
Ops other than conv / depthwise / fully-connected count only for their memory traffic.
It is an estimate of the order of magnitude, not a measurement: caches, reuse inside a
kernel, DVFS and static power are outside it.
"""

from __future__ import annotations

# picojoules per operation (Horowitz 2014, 45 nm, 0.9 V)
PJ = {"int8_add": 0.03, "int8_mult": 0.2, "int32_add": 0.1, "int32_mult": 3.1,
      "fp16_add": 0.4, "fp16_mult": 1.1, "fp32_add": 0.9, "fp32_mult": 3.7}
# picojoules per 64-bit read: SRAM by array size (bytes), DRAM low / high
SRAM_PJ_PER_64BIT = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
DRAM_PJ_PER_64BIT = (1300.0, 2600.0)
MAC_PJ = {"int8": PJ["int8_mult"] + PJ["int32_add"], "float32": PJ["fp32_mult"] + PJ["fp32_add"]}


def sram_pj_per_64bit(sram_bytes: int) -> float:
    """The table's SRAM cost for an array of ``sram_bytes`` (the 1 MB figure above 1 MB: a lower bound)."""
    for size, pj in SRAM_PJ_PER_64BIT:
        if sram_bytes <= size:
            return pj
    return SRAM_PJ_PER_64BIT[-1][1]


def activation_traffic_bytes(f) -> int:
    """Activation bytes moved per frame: each op's non-constant inputs and outputs once."""
    from mobilekit.complexity import tensor_bytes

    return sum(tensor_bytes(f, t) for op in f.ops for t in (*op.inputs, *op.outputs)
               if t >= 0 and f.tensors[t].data is None)


def energy_per_frame(f, analysis: dict, sram_kb: float) -> dict:
    """Estimated millijoules per frame: compute, weight and activation traffic, with the memory used."""
    macs = {"int8": 0, "float32": 0}
    for row in analysis["ops"]:
        if row["macs"]:
            weight = f.tensors[f.ops[row["index"]].inputs[1]]
            macs["int8" if weight.dtype in ("INT8", "INT4", "UINT8") else "float32"] += row["macs"]
    compute_pj = sum(MAC_PJ[k] * v for k, v in macs.items())
    traffic = {"weights": analysis["weight_bytes"], "activations": activation_traffic_bytes(f)}
    footprint = analysis["weight_bytes"] + analysis["peak_activation"]["bytes"]
    fits = footprint <= sram_kb * 1024
    words = {k: v / 8 for k, v in traffic.items()}
    if fits:
        per_word = (sram_pj_per_64bit(int(sram_kb * 1024)),) * 2
    else:
        per_word = DRAM_PJ_PER_64BIT
    memory_pj = [(words["weights"] + words["activations"]) * c for c in per_word]
    to_mj = 1e-9
    return {"memory": "SRAM" if fits else "DRAM", "footprint_bytes": int(footprint),
            "macs": macs, "traffic_bytes": traffic,
            "compute_mj": compute_pj * to_mj,
            "memory_mj": [m * to_mj for m in memory_pj],
            "total_mj": [(compute_pj + m) * to_mj for m in memory_pj]}


def check_targets(f, analysis: dict, median_ms: float | None, *, sram_kb=None, fps=None,
                  energy_mj=None) -> dict:
    """The seed's design-goal checks for the budgets given (None: not checked)."""
    out: dict = {}
    footprint = analysis["weight_bytes"] + analysis["peak_activation"]["bytes"]
    if sram_kb is not None:
        out["sram"] = {"budget_kb": sram_kb, "weights_bytes": analysis["weight_bytes"],
                       "peak_activation_bytes": analysis["peak_activation"]["bytes"],
                       "footprint_bytes": footprint, "ok": footprint <= sram_kb * 1024}
    if fps is not None and median_ms is not None:
        achieved = 1e3 / median_ms
        out["fps"] = {"target": fps, "median_ms": median_ms, "achieved": achieved, "ok": achieved >= fps}
    if energy_mj is not None:
        # Without an SRAM budget, assume the weights and activations live in DRAM.
        e = energy_per_frame(f, analysis, sram_kb if sram_kb is not None else 0)
        out["energy"] = {"budget_mj": energy_mj, **e, "ok": e["total_mj"][1] <= energy_mj}
    return out
