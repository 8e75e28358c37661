"""Device profiles (devices.json) and the cost model: emulated instructions -> batch-1 latency on a phone.

    latency = instructions at T threads / (ipc[kind] * sum over the T fastest cores of rel * GHz) * (1 + s (T - 1))

``instructions`` are counted on the qemu CPU model standing for the device's big core
(summed over threads); ``kind`` is float or int8 (what the convolutions compute in);
``rel`` is the core type's throughput per clock relative to the calibration core;
``s`` the serial fraction of the parallel model. ``ipc`` is the only fitted constant per
kind: it makes the calibration device reproduce its published figures exactly (int8 on a core
without dotprod takes the float constant: devices.json ``int8_without_dotprod``). The
constants, their sources and the validation figures (never fitted) live in devices.json;
docs/arm-emulation.md states the expected error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mobilekit.errors import MobilekitError

DEVICES_JSON = Path(__file__).with_name("devices.json")


@dataclass(frozen=True)
class Device:
    name: str
    title: str
    soc: str
    clusters: tuple[tuple[str, int, float], ...]  # (core type, count, GHz)
    qemu_cpu: str
    threads: int

    def cores(self, threads: int) -> list[tuple[str, float]]:
        """The ``threads`` cores a pinned run uses: the fastest first (rel * GHz)."""
        rel = {k: v["relative_throughput"] for k, v in data()["core_types"].items()}
        every = sorted(((core, ghz) for core, count, ghz in self.clusters for _ in range(count)),
                       key=lambda c: -rel[c[0]] * c[1])
        if threads > len(every):
            raise MobilekitError(f"{self.name} has {len(every)} cores; received {threads} threads")
        return every[:threads]


@cache
def data() -> dict:
    return json.loads(DEVICES_JSON.read_text())


def devices() -> dict[str, Device]:
    return {name: Device(name, d["title"], d["soc"], tuple((c["core"], c["count"], c["ghz"]) for c in d["clusters"]),
                         d["qemu_cpu"], d["threads"]) for name, d in data()["devices"].items()}


def device(name: str) -> Device:
    known = devices()
    if name not in known:
        raise MobilekitError(f"unknown device {name!r}; choose from {', '.join(known)}")
    return known[name]


def _parallel_factor(threads: int) -> float:
    return 1 + data()["parallel"]["serial_fraction"] * (threads - 1)


def _cycles_per_ns(d: Device, threads: int) -> float:
    """Relative-core-GHz sum of the cores used (instructions per ns at ipc 1)."""
    rel = data()["core_types"]
    return sum(rel[core]["relative_throughput"] * ghz for core, ghz in d.cores(threads))


def ipc() -> dict[str, float]:
    """The fitted instructions per (relative) cycle per kind, from the calibration figures."""
    cal = data()["calibration"]
    d = device(cal["device"])
    return {kind: cal["instructions"][kind] * _parallel_factor(cal["threads"])
            / (cal["figures_ms"][kind] * 1e6 * _cycles_per_ns(d, cal["threads"])) for kind in ("float", "int8")}


def predict_ms(name: str, instructions: int, kind: str, threads: int | None = None) -> float:
    from mobilekit.emulate.root import CPUS

    d = device(name)
    threads = threads or d.threads
    if kind == "int8" and not CPUS[d.qemu_cpu].dotprod:
        kind = data()["int8_without_dotprod"]["ipc_of"]
    return instructions * _parallel_factor(threads) / (ipc()[kind] * _cycles_per_ns(d, threads) * 1e6)


def compute_kind(f) -> str:
    """"int8" when most MACs run in integer convolutions / FC layers of the TfliteFile ``f``, else "float"."""
    from mobilekit.complexity import op_macs
    from mobilekit.tflite_file import WEIGHT_OPS

    macs = {"int8": 0, "float": 0}
    for op in f.ops:
        if op.name in WEIGHT_OPS and op.outputs:
            integer = f.tensors[op.outputs[0]].dtype.lower() in ("int8", "uint8", "int16")
            macs["int8" if integer else "float"] += op_macs(f, op)
    return "int8" if macs["int8"] > macs["float"] else "float"


def basis() -> str:
    cal = data()["calibration"]
    return (f"calibrated on {cal['model']}: {cal['figures_ms']['float']:g} ms float, {cal['figures_ms']['int8']:g} ms "
            f"int8, {cal['source']}; expected error: {data()['expected_error']} (docs/arm-emulation.md)")


def prediction(name: str, emulated: dict, kind: str) -> dict:
    """A report entry for device ``name`` from a :func:`mobilekit.emulate.count_instructions` result."""
    d = device(name)
    counted = emulated["threads"].get(str(d.threads))
    if counted is None or emulated["cpu"] != d.qemu_cpu:
        raise MobilekitError(f"{name} needs counts on {d.qemu_cpu} at {d.threads} threads")
    return {"device": name, "title": d.title, "qemu_cpu": d.qemu_cpu, "threads": d.threads, "kind": kind,
            "instructions": counted["instructions"], "predicted_ms": predict_ms(name, counted["instructions"], kind),
            "basis": basis()}


def arm_section(content: bytes, cpus=(), device_names=(), threads=(1, 4), repeats: int = 2, inputs=None) -> dict:
    """Emulated counts on ``cpus`` (at ``threads``) and predictions for ``device_names`` for one .tflite.

    Each qemu CPU runs once, at the union of the thread counts asked of it (a device adds its own).
    """
    from mobilekit.emulate import count_instructions
    from mobilekit.tflite_file import TfliteFile

    kind = compute_kind(TfliteFile(content))
    need: dict[str, set[int]] = {cpu: set(threads) for cpu in cpus}
    for name in device_names:
        d = device(name)
        need.setdefault(d.qemu_cpu, set()).add(d.threads)
    from mobilekit.progress import task

    emulated = {}
    with task("emulated ARM runs (qemu)", len(need)) as advance:
        for cpu, ts in need.items():
            emulated[cpu] = count_instructions(content, cpu, sorted(ts), repeats, inputs)
            advance(f"{cpu} done")
    return {"kind": kind, "emulated": emulated,
            "devices": {name: prediction(name, emulated[device(name).qemu_cpu], kind) for name in device_names}}


def arm_lines(section: dict) -> list[str]:
    """Human-readable lines for an :func:`arm_section`."""
    lines = []
    for cpu, e in section["emulated"].items():
        counts = []
        for n, c in e["threads"].items():
            same = f"identical x{len(c['repeats'])}" if c["identical"] else f"spread {c['spread']:.2%}"
            counts.append(f"{n} thread(s) {c['instructions']:,} ({same})")
        match = "bit-exact with the host" if e["bit_exact"] else \
            f"max |diff| vs host {max(m['max_abs_diff'] for m in e['matches_host'].values()):g}"
        lines.append(f"{cpu}{' (dotprod)' if e['dotprod'] else ''}: instructions per invoke {'; '.join(counts)}; "
                     f"{match}")
    for p in section["devices"].values():
        lines.append(f"{p['device']} ({p['title']}), {p['threads']} threads, {p['kind']}: predicted "
                     f"{p['predicted_ms']:.2f} ms from {p['instructions']:,} instructions on {p['qemu_cpu']}")
    if section["devices"]:
        lines.append(f"  basis: {basis()}")
    return lines
