"""The cached aarch64 root that `mobilekit emulate` runs LiteRT in (``mobilekit emulate setup``).

Layout under ``$MOBILEKIT_CACHE/arm64`` (default ``~/.cache/mobilekit/arm64``)::

    base/                 Debian bookworm arm64 python3.11 (packages unpacked by mmdebstrap
                          --variant=extract: no maintainer scripts, so no emulation while building)
    base/opt/mobilekit/site/   aarch64 wheels of the host's ai-edge-litert and numpy versions, unzipped
    views/<cpu>/          what qemu's -L sees for one CPU model: symlinks into base/ plus that CPU's
                          /proc/cpuinfo and /sys/devices/system/cpu files (cpuinfo picks XNNPACK's
                          kernels from them; without the sys files it crashes, see docs/arm-emulation.md)
    libicount.so          the counting plugin, compiled from icount.c with the host's gcc
    manifest.json         versions; written last, so its presence means the root is complete

It needs root for apt-get (Debian packages qemu-user, mmdebstrap, gcc) and mmdebstrap;
running the emulator afterwards needs no privileges (qemu user mode, no binfmt, no chroot).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from mobilekit.errors import MobilekitError

LAYOUT = 1  # bump when the layout changes: setup rebuilds
SUITE = "bookworm"
GUEST_PYTHON = "/usr/bin/python3.11"
GUEST_SITE = "opt/mobilekit/site"
PLUGIN_SOURCE = Path(__file__).with_name("icount.c")
GUEST_SCRIPT = Path(__file__).with_name("guest.py")
DEBIAN_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6")
WHEEL_PLATFORMS = ("manylinux_2_27_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64",
                   "manylinux_2_17_aarch64")  # without 2_27, pip silently picks ai-edge-litert 1.4
HOST_TOOLS = {"qemu-aarch64": "qemu-user", "mmdebstrap": "mmdebstrap", "gcc": "gcc"}
THREAD_SLOTS = 8  # CPUs the guest sees in /sys: the most threads a run may use


@dataclass(frozen=True)
class CpuModel:
    """A qemu CPU model and the identity Linux would show for it (MIDR fields, HWCAP names)."""

    part: int
    variant: int
    revision: int
    features: str

    @property
    def dotprod(self) -> bool:
        return "asimddp" in self.features.split()


_V80 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
_V82 = _V80 + " atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp"
# The qemu 7.2 models that run XNNPACK correctly (`max` gives garbage int8 outputs: its SME breaks XNNPACK).
CPUS = {
    "cortex-a35": CpuModel(0xD04, 0x0, 2, _V80),
    "cortex-a53": CpuModel(0xD03, 0x0, 4, _V80),
    "cortex-a57": CpuModel(0xD07, 0x1, 0, _V80),
    "cortex-a72": CpuModel(0xD08, 0x0, 3, _V80),
    "cortex-a76": CpuModel(0xD0B, 0x4, 1, _V82),
    "neoverse-n1": CpuModel(0xD0C, 0x4, 1, _V82),
}
REFUSED = {"max": "qemu's `max` model has SME, which makes XNNPACK's int8 kernels return garbage",
           "a64fx": "A64FX is a 512-bit SVE server core, not a phone core"}


def check_cpu(cpu: str) -> str:
    if cpu in REFUSED:
        raise MobilekitError(f"CPU model {cpu!r} is refused: {REFUSED[cpu]}; use one of {', '.join(CPUS)}")
    if cpu not in CPUS:
        raise MobilekitError(f"unknown CPU model {cpu!r}; choose from {', '.join(CPUS)}")
    return cpu


def cache_dir() -> Path:
    base = os.environ.get("MOBILEKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mobilekit")
    return Path(base) / "arm64"


def plugin_sha256() -> str:
    return hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()


def wanted() -> dict:
    """What a complete root must match: the host's LiteRT and numpy, this layout and plugin."""
    return {"layout": LAYOUT, "suite": SUITE, "ai_edge_litert": version("ai-edge-litert"),
            "numpy": version("numpy"), "plugin_sha256": plugin_sha256()}


def status(root: Path | None = None) -> dict:
    """What is there: ``ready`` only when the manifest matches :func:`wanted` and the pieces exist."""
    root = root or cache_dir()
    out = {"root": str(root), "ready": False, "tools": {t: shutil.which(t) for t in HOST_TOOLS}}
    manifest = root / "manifest.json"
    if not manifest.is_file():
        out["problem"] = "not set up: run `mobilekit emulate setup` (as root)"
        return out
    m = json.loads(manifest.read_text())
    out["manifest"] = m
    stale = [k for k, v in wanted().items() if m.get(k) != v]
    missing = [p for p in ("libicount.so", f"base{GUEST_PYTHON}", *(f"views/{c}" for c in CPUS))
               if not (root / p).exists()]
    if stale:
        out["problem"] = f"stale ({', '.join(stale)} changed): run `mobilekit emulate setup` again"
    elif missing:
        out["problem"] = f"incomplete ({missing[0]} missing): run `mobilekit emulate setup` again"
    elif out["tools"]["qemu-aarch64"] is None:
        out["problem"] = "qemu-aarch64 is not installed (Debian package qemu-user)"
    else:
        out["ready"] = True
    return out


def require_ready() -> Path:
    s = status()
    if not s["ready"]:
        raise MobilekitError(f"the arm64 root at {s['root']} is {s['problem']}")
    return Path(s["root"])


def _run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if r.returncode != 0:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise MobilekitError(f"{what} failed (exit {r.returncode}): {tail[0]}")
    return r


def _ensure_host_tools(say) -> None:
    missing = {tool: pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None}
    if not missing:
        return
    pkgs = sorted(set(missing.values()))
    if os.geteuid() != 0:
        raise MobilekitError(f"missing {', '.join(missing)}: installing Debian package(s) {' '.join(pkgs)} needs "
                             f"root; run `sudo apt-get install {' '.join(pkgs)}` or run setup as root")
    say(f"installing Debian packages {' '.join(pkgs)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], "apt-get update", env=env)
    _run(["apt-get", "install", "-y", "-qq", *pkgs], f"apt-get install {' '.join(pkgs)}", env=env)


def _cpuinfo(cpu: CpuModel) -> str:
    block = ("processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: {f}\nCPU implementer\t: 0x41\n"
             "CPU architecture: 8\nCPU variant\t: {v:#x}\nCPU part\t: {p:#x}\nCPU revision\t: {r}\n\n")
    return "".join(block.format(i=i, f=cpu.features, v=cpu.variant, p=cpu.part, r=cpu.revision)
                   for i in range(THREAD_SLOTS))


def _make_views(tmp: Path) -> None:
    """One -L prefix per CPU model: symlinks into base/ plus that CPU's /proc/cpuinfo and /sys files."""
    base = tmp / "base"
    for name, cpu in CPUS.items():
        view = tmp / "views" / name
        view.mkdir(parents=True)
        for entry in base.iterdir():
            if entry.name not in ("proc", "sys"):
                (view / entry.name).symlink_to(Path("..", "..", "base", entry.name))
        (view / "proc").mkdir()
        (view / "proc" / "cpuinfo").write_text(_cpuinfo(cpu))
        sysdir = view / "sys" / "devices" / "system" / "cpu"
        sysdir.mkdir(parents=True)
        for f in ("possible", "present", "online"):
            (sysdir / f).write_text(f"0-{THREAD_SLOTS - 1}\n")


def _wheels(tmp: Path, want: dict) -> None:
    dl = tmp / "wheels"
    platforms = [a for p in WHEEL_PLATFORMS for a in ("--platform", p)]
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version", "3.11",
          "--implementation", "cp", *platforms, "-d", str(dl), f"ai-edge-litert=={want['ai_edge_litert']}",
          f"numpy=={want['numpy']}"], "pip download of the aarch64 wheels")
    site = tmp / "base" / GUEST_SITE
    site.mkdir(parents=True)
    for wheel in sorted(dl.glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(site)
    shutil.rmtree(dl)


def run_guest(root: Path, cpu: str, workdir: Path, args: list[str], counts: Path | None = None,
              timeout: float = 3600):
    """Run the guest script in ``workdir`` under qemu-aarch64 with ``cpu`` (counting if ``counts``).

    Everything the guest sees is the same bytes for every job: the root is reached through the
    link ``workdir/r``, argv is fixed, the environment minimal, addresses not randomized. So the
    same file, inputs and CPU give the same instruction count in every process.
    """
    (workdir / "r").symlink_to(root / "views" / cpu)
    shutil.copyfile(GUEST_SCRIPT, workdir / "guest.py")
    cmd = ["qemu-aarch64", "-L", "r", "-cpu", cpu, "-0", GUEST_PYTHON]
    if counts is not None:
        cmd += ["-plugin", f"{root / 'libicount.so'},out={counts}"]
    cmd += ["r" + GUEST_PYTHON, "guest.py", *args]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    if shutil.which("setarch"):
        cmd = ["setarch", os.uname().machine, "-R", *cmd]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)
    except subprocess.TimeoutExpired:
        raise MobilekitError(f"the emulated run on {cpu} took over {timeout:.0f} s") from None


def setup(force: bool = False, mirror: str | None = None, say=print) -> dict:
    """Build the root if it is missing, stale or ``force``; returns :func:`status`. Idempotent."""
    root = cache_dir()
    s = status(root)
    if s["ready"] and not force:
        say(f"arm64 root ready at {root} (ai-edge-litert {s['manifest']['ai_edge_litert']}); nothing to do")
        return s
    want = wanted()
    t0 = time.monotonic()
    step = iter(range(1, 7))

    def stage(text):
        say(f"[{next(step)}/6 {time.monotonic() - t0:5.0f} s] {text}")

    stage("host tools: qemu-aarch64 (qemu-user), mmdebstrap, gcc")
    _ensure_host_tools(say)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="arm64.partial-", dir=root.parent))
    try:
        stage(f"Debian {SUITE} arm64: {', '.join(DEBIAN_PACKAGES)} (mmdebstrap --variant=extract)")
        _run(["mmdebstrap", "--quiet", "--variant=extract", "--architectures=arm64",
              f"--include={','.join(DEBIAN_PACKAGES)}", SUITE, str(tmp / "base"), *([mirror] if mirror else [])],
             "mmdebstrap (it needs root, or working user namespaces)")
        stage(f"aarch64 wheels: ai-edge-litert {want['ai_edge_litert']}, numpy {want['numpy']}")
        _wheels(tmp, want)
        stage("per-CPU views: /proc/cpuinfo and /sys/devices/system/cpu for " + ", ".join(CPUS))
        _make_views(tmp)
        stage("counting plugin: gcc icount.c -> libicount.so")
        _run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp / "libicount.so"), str(PLUGIN_SOURCE)],
             "compiling the qemu plugin")
        stage("smoke test: the guest imports numpy and LiteRT under qemu (cortex-a76)")
        work = Path(tempfile.mkdtemp(prefix="probe-", dir=tmp))
        probe = run_guest(tmp, "cortex-a76", work, ["--versions"], timeout=600)
        shutil.rmtree(work)
        if probe.returncode != 0:
            raise MobilekitError(f"the guest Python does not start: {(probe.stderr.strip() or 'no output')[-300:]}")
        got = json.loads(probe.stdout.strip().splitlines()[-1])
        if got["ai_edge_litert"] != want["ai_edge_litert"]:
            raise MobilekitError(f"the guest has ai-edge-litert {got['ai_edge_litert']}, the host "
                                 f"{want['ai_edge_litert']}")
        manifest = {**want, "guest_python": got["python"], "cpus": list(CPUS), "debian_packages":
                    list(DEBIAN_PACKAGES), "built_s": round(time.monotonic() - t0, 1)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)  # complete or absent: never half-written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"arm64 root ready at {root} in {time.monotonic() - t0:.0f} s")
    return status(root)
