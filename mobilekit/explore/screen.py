"""Screening: the metrics a design point has before any training, and the hard targets they decide.

From the untrained arch, compressed by its recipe's structure in one shot and converted to
full-int8 like a build's file (mobilekit.sizing's method): params, MACs, int8 .tflite bytes,
gzip bytes (an estimate: trained weights compress a little differently), weight bytes, peak
activation bytes, SRAM fit, energy per frame (docs/energy-model.md) and, with a device, the
predicted latency from instruction counts on the emulated ARM core.

ARM counts depend on the architecture, not on the weight values, for dense int8 kernels
(tests/integration check a trained and an untrained file of one config count the same), so
they are computed once per architecture config and kept in ``DIR/screen/``; the trained point
reuses them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

from mobilekit.files import write_json_atomic
from mobilekit.settings import size_hw

# A size target drops a point before training only when the untrained estimate is this far over
# it: trained weights gzip differently (docs/explore.md gives the measured error).
SIZE_SCREEN_TOLERANCE = 0.10


def _arch_kwargs(config: dict) -> dict:
    from mobilekit.pipeline import arch_kwargs

    return arch_kwargs(config["arch"], config.get("arch_kwargs"))


def create_model(config: dict, classes: int):
    """The untrained Keras model a point trains (the build's training arch keywords included)."""
    from mobilekit import archs

    return archs.create(config["arch"], input_shape=(*size_hw(config["input_size"]), 3), classes=classes,
                        **_arch_kwargs(config))


def screen_key(config: dict, classes: int, device: str | None, sram_kb: float | None) -> str:
    """What decides the screening metrics: the architecture, the input, the recipe's structure."""
    from mobilekit.recipes import Recipe

    spec = Recipe.resolve(config["recipe"], config["sparsity"], config["qat"], config["clusters"],
                          rewrites=config.get("rewrites"))
    key = {"arch": config["arch"], "arch_kwargs": _arch_kwargs(config), "input_size": config["input_size"],
           "classes": classes, "sparsity": spec.sparsity, "m_by_n": spec.m_by_n, "clusters": spec.clusters,
           "per_tensor_weights": spec.per_tensor_weights, "rewrites": list(spec.rewrites), "device": device,
           "sram_kb": sram_kb}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=list).encode()).hexdigest()[:12]


def untrained_int8(config: dict, classes: int) -> tuple[dict, bytes]:
    """(params/MACs, int8 .tflite bytes) of the point's arch, one-shot compressed by its recipe."""
    from mobilekit.backend import keras
    from mobilekit.complexity import complexity
    from mobilekit.convert import convert_int8
    from mobilekit.optimize import one_shot
    from mobilekit.convert import random_calibration
    from mobilekit.recipes import Recipe
    from mobilekit.rewrites import rewrite, rewrite_for_qat

    keras.utils.set_random_seed(0)
    model = create_model(config, classes)
    info = complexity(model)
    spec = Recipe.resolve(config["recipe"], config["sparsity"], config["qat"], config["clusters"],
                          rewrites=config.get("rewrites"))
    # m-by-n pruning zeroes half of each group: its size is close to 50% magnitude pruning's.
    one_shot(model, spec.sparsity or (spec.m_by_n[0] / spec.m_by_n[1] if spec.m_by_n else 0.0), spec.clusters)
    calibration = random_calibration((*size_hw(config["input_size"]), 3))
    # The build's export rewrites (with QAT, the kernel-keeping ones only), so the screen sees its graph.
    exported, _ = (rewrite_for_qat if spec.qat else rewrite)(model, spec.rewrites)
    return info, convert_int8(exported, calibration, per_tensor_weights=spec.per_tensor_weights)


def device_latency(content: bytes, device: str) -> dict:
    """Instructions on the device's emulated core and the predicted batch-1 latency of an int8 file."""
    from mobilekit.bench.devices import arm_section

    p = arm_section(content, device_names=(device,), threads=(), repeats=1)["devices"][device]
    return {"instructions": p["instructions"], "latency_device_ms": p["predicted_ms"], "threads": p["threads"],
            "qemu_cpu": p["qemu_cpu"]}


def screen(config: dict, classes: int, device: str | None, sram_kb: float | None,
           cache: Path | None = None) -> dict:
    """Screening metrics of one point (cached in ``cache``/<key>.json when given)."""
    from mobilekit.bench.energy import energy_per_frame
    from mobilekit.complexity import analyze
    from mobilekit.tflite_file import TfliteFile

    key = screen_key(config, classes, device, sram_kb)
    path = cache / f"{key}.json" if cache else None
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    info, content = untrained_int8(config, classes)
    f = TfliteFile(content)
    a = analyze(f)
    energy = energy_per_frame(f, a, sram_kb or 0)
    out = {"key": key, "params": int(info["params"]), "macs": int(info["macs"]),
           "size_tflite_bytes": len(content), "size_gzip_bytes": len(gzip.compress(content, 9, mtime=0)),
           "weight_bytes": int(a["weight_bytes"]), "peak_activation_bytes": int(a["peak_activation"]["bytes"]),
           "footprint_bytes": int(energy["footprint_bytes"]), "energy_mj": float(energy["total_mj"][1]),
           "memory": energy["memory"]}
    if device is not None:
        out.update(device_latency(content, device))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, out)
    return out


def target_checks(metrics: dict, targets) -> dict[str, tuple[bool, str]]:
    """Per given target whose metric is known: (met, the reason when not). Screened metrics carry
    ``screened=True`` and get the size tolerance (the untrained gzip size is an estimate)."""
    t, m = targets, metrics
    out: dict[str, tuple[bool, str]] = {}
    if t.max_size_kb is not None and m.get("size_gzip_bytes") is not None:
        limit = t.max_size_kb * 1024 * (1 + SIZE_SCREEN_TOLERANCE if m.get("screened") else 1)
        out["max_size_kb"] = (m["size_gzip_bytes"] <= limit,
                              f"gzip {m['size_gzip_bytes'] / 1024:,.1f} KiB > {t.max_size_kb:g} KiB")
    if t.sram_kb is not None and m.get("footprint_bytes") is not None:
        out["sram_kb"] = (m["footprint_bytes"] <= t.sram_kb * 1024,
                          f"weights + peak activations {m['footprint_bytes'] / 1024:,.0f} KiB > SRAM {t.sram_kb:g} KiB")
    if t.fps is not None and m.get("latency_device_ms") is not None:
        fps = 1e3 / m["latency_device_ms"]
        out["fps"] = (fps >= t.fps, f"{fps:.1f} FPS < {t.fps:g} FPS")
    if t.energy_mj is not None and m.get("energy_mj") is not None:
        out["energy_mj"] = (m["energy_mj"] <= t.energy_mj, f"{m['energy_mj']:.3g} mJ/frame > {t.energy_mj:g} mJ")
    if t.min_accuracy is not None and m.get("accuracy_int8") is not None:
        out["min_accuracy"] = (m["accuracy_int8"] >= t.min_accuracy,
                               f"int8 accuracy {m['accuracy_int8']:.2%} < {t.min_accuracy:.2%}")
    return out


def violations(metrics: dict, targets) -> list[str]:
    """The hard targets ``metrics`` (screened or measured) miss, one short reason each."""
    return [why for met, why in target_checks(metrics, targets).values() if not met]
