"""The host CPU a timing was measured on: model and the features that decide int8 speed.

Host int8 vs float speed depends on the CPU more than on the model: with AVX-512 VNNI (or AVX-VNNI) int8
convolutions run at about half float's time, on AVX2-only x86 about as slow as float or slower; on ARM,
dotprod and i8mm play that role. Every timing mobilekit records carries :func:`cpu_info`.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

# Flags (as /proc/cpuinfo spells them) that matter for int8 and float kernels, in display order.
X86_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
                "amx_tile", "amx_int8")
ARM_FEATURES = ("asimd", "asimddp", "i8mm", "sve", "sve2", "sme")
ARM_NAMES = {"asimddp": "dotprod"}


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _field(text: str, *names: str) -> str | None:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in names:
            return value.strip()
    return None


@lru_cache(maxsize=1)
def cpu_info() -> dict:
    """``{"machine", "model", "cpus", "features": [...], "int8_dot_product": bool, "summary"}`` of this host."""
    text = _cpuinfo()
    machine = platform.machine()
    flags = set((_field(text, "flags", "features") or "").split())
    known = X86_FEATURES if machine in ("x86_64", "AMD64", "i686") else ARM_FEATURES
    features = [ARM_NAMES.get(f, f) for f in known if f in flags]
    dot = bool({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"} & flags)
    model = _field(text, "model name", "hardware", "cpu model") or platform.processor() or machine
    return {"machine": machine, "model": model, "cpus": os.cpu_count(), "features": features,
            "int8_dot_product": dot, "summary": summary(machine, features)}


def summary(machine: str, features: list[str]) -> str:
    """One phrase for reports: e.g. "x86_64, AVX2 + AVX-512 + VNNI" or "x86_64, AVX2, no VNNI"."""
    f = set(features)
    if machine.startswith("x86") or machine == "AMD64":
        parts = ["AVX2"] if "avx2" in f else []
        if "avx512f" in f:
            parts.append("AVX-512")
        vnni = [name for flag, name in (("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
                                        ("amx_int8", "AMX-INT8")) if flag in f]
        return f"{machine}, " + " + ".join(parts + vnni if vnni else parts + ["no VNNI"])
    return f"{machine}, " + (", ".join(features) or "no SIMD features listed")
