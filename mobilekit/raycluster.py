"""Ray for the commands that use it (explore's sweeps, a build's data-parallel training): a cluster address checked
before anything is written, a local Ray of the command's own (with a watchdog that stops it if the driver dies), or
an existing cluster, and Ray's own log lines kept out of the command's output."""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

from mobilekit.errors import MobilekitError


def _host_port(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port), or a one-line error."""
    host, sep, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # a bare IPv6 address: the port is ambiguous
    if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536 \
            or any(c.isspace() for c in host):
        raise MobilekitError(f"--address must be HOST:PORT, [IPv6]:PORT or auto; received {address!r}")
    return host, int(port)


def _running_cluster() -> str | None:
    """The address Ray's ``auto`` would attach to on this machine (Ray's own record), if any."""
    record = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
    try:
        text = record.read_text().strip()
    except OSError:
        return None
    return text or None


def check_address(address: str | None, url_hint: str) -> None:
    """Every ``--address`` form checked before anything is written: a reachable ``HOST:PORT`` (IPv6 in
    brackets), ``auto`` only with a cluster running on this machine; Ray Client (``ray://``) and dashboard
    (``http://``) URLs are refused with what to use instead."""
    if address is None:
        return
    if address.startswith(("ray://", "http://", "https://")):
        raise MobilekitError(f"--address {address!r}: {url_hint}")
    if address == "auto":
        found = _running_cluster()
        if found is None:
            raise MobilekitError("--address auto: no Ray cluster runs on this machine (start one with `ray start "
                                 "--head`, or leave out --address for a local Ray of this command's own)")
    host, port = _host_port(found if address == "auto" else address)
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as e:
        where = f"auto (Ray's record names {found})" if address == "auto" else address
        raise MobilekitError(f"no Ray cluster answers at --address {where}: {e.strerror or e}") from None



# Runs beside a local Ray's driver, noting every second the processes under it (Ray's daemons, agents, workers;
# start times kept, so a reused pid is never hit). When the driver is gone without saying "ok" (kill -9, a crash),
# it kills them at once: Ray's own agents notice only after about a minute.
_WATCHDOG = r"""
import os, select, signal, sys
driver, me, seen = int(sys.argv[1]), os.getpid(), {}
def scan():
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
                procs[int(d)] = (int(rest[1]), rest[19])
            except (OSError, ValueError, IndexError):
                pass
    grew = True
    while grew:
        grew = False
        for pid, (ppid, start) in procs.items():
            if (ppid == driver or ppid in seen) and pid not in seen and pid != me:
                seen[pid], grew = start, True
    return procs
while True:
    if select.select([sys.stdin], [], [], 1.0)[0]:
        if sys.stdin.readline().strip() == "ok":
            sys.exit(0)
        break
    scan()
procs = scan()
for pid, start in seen.items():
    if pid in procs and procs[pid][1] == start:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


class _RayWatchdog:
    """Kills a local Ray's processes when the driver dies without shutting it down (Linux /proc)."""

    def __init__(self):
        import subprocess
        import sys

        self.proc = None
        if Path("/proc/self/stat").is_file():
            self.proc = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid())],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)

    def release(self):
        """Ray was shut down cleanly: the watchdog exits without killing anything."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.communicate(b"ok\n", timeout=30)
            except Exception:  # noqa: BLE001 - best effort; it dies with its pipe anyway
                self.proc.kill()


def alive_nodes(ray) -> list[dict]:
    return [n for n in ray.nodes() if n.get("Alive")]


def cluster_line(ray) -> str:
    """How many nodes and CPUs the Ray this process is connected to has."""
    return f"{len(alive_nodes(ray))} Ray node(s), {ray.cluster_resources().get('CPU', 0):g} CPUs"


def init(address: str | None, num_cpus: int | None = None):
    """Ray for this process: a local instance of its own with ``num_cpus`` (default: the machine's), or the cluster at
    ``address``; returns the ``ray`` module. A local instance is stopped by :func:`shutdown`, or by its watchdog when
    the driver dies first.

    Raises:
        MobilekitError: Ray could not start, or the cluster did not answer.
    """
    import ray

    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address is None:  # its own instance, even when another Ray runs on the machine (or RAY_ADDRESS is set)
        kwargs.update(address="local", num_cpus=num_cpus or os.cpu_count())
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise MobilekitError(f"could not start or reach Ray ({address or 'local'}): "
                             f"{str(e).strip().splitlines()[0][:200]}") from None
    for name in ("ray", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # a failed trial is a row and one line of ours
    logging.getLogger("ray.train.v2").setLevel(logging.CRITICAL)  # a restarted worker group is one line of ours
    _quiet_cluster_errors()
    if address is None:
        _WATCHDOGS.append(_RayWatchdog())
    return ray


_WATCHDOGS: list[_RayWatchdog] = []


def _quiet_cluster_errors() -> None:
    """Ray prints the cluster's error events (a raylet that died, a node marked dead) straight to the driver's
    stdout, with no switch to turn them off; a sweep says what they mean in its own line (a trial run again)."""
    import ray._private.worker as ray_worker

    if getattr(ray_worker.print_to_stdstream, "_mobilekit", False):
        return
    original = ray_worker.print_to_stdstream

    def print_to_stdstream(data, ignore_prefix):
        if data.get("pid") != "raylet":
            original(data, ignore_prefix)

    print_to_stdstream._mobilekit = True
    ray_worker.print_to_stdstream = print_to_stdstream


def shutdown(ray) -> None:
    """Shut Ray down, then dismiss the watchdog of a local instance."""
    ray.shutdown()
    while _WATCHDOGS:
        _WATCHDOGS.pop().release()

