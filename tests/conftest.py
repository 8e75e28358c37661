"""Shared fixtures and the rules for tests that need something installed.

Tiers (docs/testing.md): the fast lane is `pytest -m "not slow"`; `slow` marks tests of seconds or more (builds,
conversions, fresh processes), which the full run (CI) adds; `extended` marks the end-to-end tests that repeat a
path the full run already builds once (other archs, layouts and recipes, node kills, the README's slow commands):
they run only when asked, with `--extended` or an `-m` that names them (`pytest -m extended`), or by node id.
Markers name what a test needs beyond the Python packages: `needs_data` (Debian's Fashion-MNIST),
`needs_arm_root` (`mobilekit emulate setup`), `needs_jdk` (javac/java), `needs_browser` (Debian's chromium),
`needs_runtimes` (.venv-runtimes). Locally a missing one skips
the test with the reason; in CI (`CI=true`) or with `MOBILEKIT_STRICT=1` it fails it, so CI never
skips silently.
"""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mobilekit.data import find_fashion_mnist  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNTIMES_PYTHON = ROOT / ".venv-runtimes" / "bin" / "python"
STRICT = os.environ.get("MOBILEKIT_STRICT") == "1" or os.environ.get("CI", "").lower() == "true"


def _arm_root_ready() -> bool:
    from mobilekit.emulate import status

    return bool(status().get("ready"))


NEEDS = {
    "needs_data": (lambda: find_fashion_mnist() is not None,
                   "Fashion-MNIST (`apt-get install dataset-fashion-mnist`, or scripts/setup.sh)"),
    "needs_arm_root": (_arm_root_ready, "the aarch64 root (`mobilekit emulate setup` as root, or "
                                        "scripts/setup.sh --test)"),
    "needs_jdk": (lambda: shutil.which("javac") is not None and shutil.which("java") is not None,
                  "a JDK (`apt-get install openjdk-17-jdk-headless`, or scripts/setup.sh --test)"),
    "needs_runtimes": (RUNTIMES_PYTHON.is_file,
                       "MediaPipe Tasks and the Task Library in .venv-runtimes (scripts/setup.sh --test)"),
    "needs_browser": (lambda: shutil.which("chromium") is not None,
                      "Chromium for the Model Explorer page (`apt-get install chromium`, or scripts/setup.sh --test)"),
}


def pytest_addoption(parser):
    parser.addoption("--extended", action="store_true",
                     help="also run the extended tier (end-to-end repeats of paths the full run builds once)")


def _asked_for(config, item) -> bool:
    """Whether the command line names this test (`tests/test_x.py::name`), so a tier never hides it."""
    for arg in config.args:
        path, sep, rest = arg.partition("::")
        if sep and item.nodeid.startswith(Path(os.path.relpath(path, config.rootpath)).as_posix() + sep + rest):
            return True
    return False


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "fashion_small" in getattr(item, "fixturenames", ()):
            item.add_marker("needs_data")
    lone = [i.nodeid for i in items if i.get_closest_marker("extended") and not i.get_closest_marker("slow")]
    if lone:  # the fast lane (-m "not slow") must never run one
        raise pytest.UsageError(f"an extended test must be marked slow too: {lone[0]}")
    if config.getoption("--extended") or "extended" in (config.option.markexpr or ""):
        return
    extended = [i for i in items if i.get_closest_marker("extended") and not _asked_for(config, i)]
    if extended:
        config.hook.pytest_deselected(items=extended)
        dropped = set(map(id, extended))
        items[:] = [i for i in items if id(i) not in dropped]


def pytest_runtest_setup(item):
    missing = [why for name, (present, why) in NEEDS.items() if item.get_closest_marker(name) and not present()]
    if missing:
        message = "needs " + "; ".join(missing)
        if STRICT:
            pytest.fail(message + " (CI / MOBILEKIT_STRICT=1: never skipped)", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def fashion_small():
    """1,000 train / 500 test Fashion-MNIST images at 32x32x3 (real data, small)."""
    from mobilekit.data import load_fashion_mnist

    return load_fashion_mnist(size=32, limit_train=1000, limit_test=500)


@pytest.fixture
def cli_run(capsys):
    """Run the `mobilekit` CLI in-process (TensorFlow is imported once per test worker, not once per call):
    returns a CompletedProcess with the exit code and what the command printed. Tests of what a fresh process
    prints (TensorFlow's start-up noise, --help's import time) run the real command instead."""
    from mobilekit import cli

    def call(*argv) -> subprocess.CompletedProcess:
        capsys.readouterr()  # what the test printed before is not the command's
        argv = [str(a) for a in argv]
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse's own errors and --help
            code = e.code
        out, err = capsys.readouterr()
        err = "\n".join(line for line in err.splitlines()
                        if "cuInit" not in line)  # TensorFlow's CUDA probe on machines without GPU
        return subprocess.CompletedProcess(["mobilekit", *argv], code, out, err)

    return call


@pytest.fixture
def cli_error(cli_run):
    """Run the `mobilekit` CLI in-process with arguments that must be refused: asserts exit code 2 and exactly
    one stderr line without a traceback, and returns that line."""

    def call(*argv) -> str:
        result = cli_run(*argv)
        err = [line for line in result.stderr.strip().splitlines() if line.strip()]
        assert result.returncode == 2, err
        assert len(err) == 1 and "Traceback" not in err[0], err
        return err[0]

    return call


def _negate_weights(content: bytes, op_index: int) -> bytes:
    """A copy of the file whose op ``op_index`` has its int8 weights negated (-128 -> 127)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    graph = model.subgraphs[0]
    weights = graph.tensors[graph.operators[op_index].inputs[1]]
    buffer = model.buffers[weights.buffer]
    values = np.frombuffer(bytes(bytearray(buffer.data)), np.int8).astype(np.int16)
    buffer.data = np.clip(-values, -128, 127).astype(np.int8).view(np.uint8).tolist()
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture
def negate_weights():
    """A planted numerics fault: ``negate_weights(content, op_index)`` (see ``_negate_weights``)."""
    return _negate_weights


# ---- the acceptance sweep, shared by tests/test_explore.py and the README's first sweep (one Ray worker) ----

MOBILEKIT = str(Path(sys.executable).parent / "mobilekit")
# A sweep's point at the smallest real cost: a float training of 0.3 epochs and post-training quantization. The
# sweep tests are about the sweep (resume, bytes, nodes, the table), and a pruning and a QAT stage would cost each
# point about 25 s of graph building (the builds' own tests cover the recipes; the README's spec sweep prunes).
TINY = ["--limit-train", "2000", "--limit-test", "500", "--input-size", "32", "--epochs", "0.3",
        "--recipe", "int8-ptq", "--min-stage-steps", "0"]
# The README's 2x2 grid, as written there, with the TINY budget.
ACCEPTANCE = ["--arch", "squeezenet1_1", "--space", "squeeze_ratio=0.25,0.5", "--space", "pct3x3=0.25,0.5", *TINY]


def explore(*argv, timeout=900, env=None) -> subprocess.CompletedProcess:
    """``mobilekit explore ARGV`` in a child process."""
    return subprocess.run([MOBILEKIT, "explore", *argv], capture_output=True, text=True, timeout=timeout, env=env)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _ppids() -> dict[int, int]:
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                out[int(d)] = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


def _descendants(pid: int) -> list[int]:
    ppids, tree, new = _ppids(), {pid}, {pid}
    while new:
        new = {p for p, pp in ppids.items() if pp in new} - tree
        tree |= new
    return sorted(tree - {pid})


def _alive(pid: int) -> bool:  # a zombie is dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="session")
def acceptance(tmp_path_factory):
    """The acceptance sweep, killed with SIGKILL once its first point finished (its local Ray must die with
    it), then run again: (sweep folder, the first run's finished files, the second run's result)."""
    out = tmp_path_factory.mktemp("explore") / "sweep"
    driver = subprocess.Popen([MOBILEKIT, "explore", *ACCEPTANCE, "--out", str(out)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    while not list(out.glob("points/*/point.json")):
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no point finished in 10 minutes"
        time.sleep(0.5)
    ray_processes = _descendants(driver.pid)  # the local Ray the driver started: daemons, agents, workers
    driver.kill()  # SIGKILL to the sweep's driver
    driver.wait()
    deadline = time.monotonic() + 30
    while (alive := [p for p in ray_processes if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        os.killpg(driver.pid, signal.SIGKILL)  # a failed check below must not leave them running
    except ProcessLookupError:
        pass
    assert alive == [], "Ray processes outlived the killed driver by 30 s"
    first = {p.parent.name: {f.name: (f.stat().st_mtime_ns, sha256_file(f)) for f in p.parent.iterdir()}
             for p in out.glob("points/*/point.json")}
    result = explore(*ACCEPTANCE, "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, first, result


RAY = str(Path(sys.executable).parent / "ray")


def namespace_prefix() -> list[str]:
    """`unshare` giving a process a private mount namespace (as root, else in a user namespace), or skip."""
    for prefix in (["unshare", "-m"], ["unshare", "-r", "-m"]):
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    pytest.skip("no private mount namespace here (unshare -m needs root or user namespaces)")


def ray_nodes(address: str) -> dict[str, dict]:
    """Alive node id -> resources, asked from a process of its own (this one stays out of Ray)."""
    probe = ("import json, ray; ray.init(address=%r, logging_level='ERROR', log_to_driver=False); "
             "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))" % address)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def runs_under(node_pid: int, title: bytes) -> bool:
    """A process with ``title`` in its command line (a Ray actor's, e.g. ``ImplicitFunc``, ``RayTrainWorker``) runs
    under the node whose `ray start` is ``node_pid``."""
    for pid in _descendants(node_pid):
        try:
            if title in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            pass
    return False


def kill_tree(proc: subprocess.Popen) -> list[int]:
    """SIGKILL a node: its `ray start` and every process under it (raylet, agents, workers)."""
    pids = [proc.pid, *_descendants(proc.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(30)
    return pids


# The GCS marks a node dead after this many failed health checks this far apart (Ray's defaults, 5 of 3 s, took 26 s
# from a SIGKILLed node to Ray Train's restart here), as Ray's own node-death tests set it: a killed node's raylet
# refuses the check at once, a live one gets Ray's default 10 s to answer each.
FAST_NODE_DEATH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 5}


@contextlib.contextmanager
def ray_cluster(private: Path, names: tuple[str, ...]):
    """A Ray cluster this test owns: a head with no CPUs and a worker node of one CPU per name, each in a mount
    namespace of its own where ``private`` and Fashion-MNIST's folders are empty tmpfs mounts (as on separate
    machines, a worker node can reach neither). Yields (head address, {name: (node id, its `ray start` process)});
    stops only its own processes (never `ray stop`, which stops every Ray on the machine)."""
    from ray.cluster_utils import Cluster

    from mobilekit.data import FASHION_MNIST_DIRS

    prefix = namespace_prefix()
    hide = [str(private)] + [d for d in map(os.path.expanduser, FASHION_MNIST_DIRS) if os.path.isdir(d)]
    head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                         "_system_config": FAST_NODE_DEATH})
    workers = {}
    try:
        for name in names:
            mounts = " && ".join(f"mount -t tmpfs tmpfs '{d}'" for d in hide)
            start = (f"{mounts} && exec '{RAY}' start --address {head.address} --node-ip-address 127.0.0.1 "
                     f"--num-cpus 1 --object-store-memory 300000000 --resources '{{\"{name}\": 1}}' --block")
            log = open(private.parent / f"{name}.log", "w")
            workers[name] = subprocess.Popen([*prefix, "sh", "-c", start], stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
            deadline = time.monotonic() + 120
            while not any(name in r for r in ray_nodes(head.address).values()):
                assert workers[name].poll() is None, (private.parent / f"{name}.log").read_text()[-2000:]
                assert time.monotonic() < deadline, f"{name} did not join the cluster in 2 minutes"
                time.sleep(1)
        ids = {name: next(i for i, r in ray_nodes(head.address).items() if name in r) for name in workers}
        yield head.address, {name: (ids[name], workers[name]) for name in workers}
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                kill_tree(proc)
        head.shutdown()
