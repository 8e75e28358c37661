"""`mobilekit explore --address` on a multi-node Ray cluster that shares nothing with the driver but Ray.

A head with no CPUs (trials never run there) and two worker nodes of one CPU each, started by this
test (`ray start` processes it owns and stops; never `ray stop`, which stops every Ray on the
machine). Each worker node runs in a mount namespace of its own where the test's folder (the sweep's
output) and Fashion-MNIST's folders are empty tmpfs mounts: as on separate machines, a worker can
reach neither the data nor the sweep folder. One worker node is killed in the middle of a trial.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mobilekit.data import FASHION_MNIST_DIRS

from conftest import ACCEPTANCE, MOBILEKIT, kill_tree, ray_cluster, runs_under, sha256_file

pytestmark = [pytest.mark.slow, pytest.mark.needs_data, pytest.mark.xdist_group("ray")]

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(head address, {worker name: (node id, ray start process)}, a folder the workers cannot see)."""
    private = tmp_path_factory.mktemp("cluster")
    with ray_cluster(private, ("node_a", "node_b")) as (address, workers):
        yield address, workers, private


def test_workers_see_neither_the_data_nor_the_sweep_folder(cluster):
    """The set-up itself: what a worker node's processes see of the test's folder and of Fashion-MNIST."""
    _, workers, private = cluster
    (private / "marker").write_text("only the driver's machine has this")
    for _, proc in workers.values():
        view = Path(f"/proc/{proc.pid}/root")  # paths as the node's `ray start` resolves them (its namespace)
        assert list(view.joinpath(str(private).lstrip("/")).iterdir()) == []
        for d in FASHION_MNIST_DIRS:
            assert not list(view.joinpath(os.path.expanduser(d).lstrip("/")).glob("*.gz"))
    assert (private / "marker").is_file() and any(Path(os.path.expanduser(d)).is_dir() for d in FASHION_MNIST_DIRS)


@pytest.mark.extended
def test_a_sweep_on_two_worker_nodes_survives_losing_one(cluster, acceptance):
    """The acceptance sweep through --address: same rows and bytes as the embedded run, trials on the worker
    nodes only, and a worker node SIGKILLed in the middle of a trial costs that trial's attempt only."""
    address, workers, private = cluster
    local_out, _, _ = acceptance
    out = private / "sweep"
    driver = subprocess.Popen([MOBILEKIT, "explore", *ACCEPTANCE, "--out", str(out), "--address", address],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        nodes_done = {}
        while len(set(nodes_done.values())) < 2:  # a point finished on each worker node: both run their next
            assert driver.poll() is None, driver.stderr.read()[-3000:]
            assert time.monotonic() < deadline, f"no point finished on each node in 15 minutes: {nodes_done}"
            for p in out.glob("points/*/point.json"):
                nodes_done.setdefault(p.parent.name, json.loads(p.read_text())["node"])
            time.sleep(0.5)
        kept = {p.parent.name: sha256_file(p) for p in out.glob("points/*/point.json")}
        killed_id, killed = workers["node_a"]
        while not runs_under(killed.pid, b"ImplicitFunc"):  # node_a's next trial: its actor process is up
            assert time.monotonic() < deadline and driver.poll() is None, "node_a ran no second trial"
            time.sleep(0.2)
        time.sleep(3)  # in the middle of its trial (a start-up and a build of ~15 s)
        kill_tree(killed)
        stdout, stderr = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, stderr[-3000:]
    assert "on 3 Ray node(s), 2 CPUs" in stdout + stderr
    # The loss is one line of ours; Ray's own cluster events and Tune's traceback stay out of the user's log.
    assert "a trial lost its worker or node" in stdout + stderr and "attempt 2" in stdout + stderr
    assert "Traceback" not in stdout + stderr and "(raylet)" not in stdout + stderr, (stdout + stderr)[-3000:]
    doc = json.loads((out / "results.json").read_text())
    local = {r["point"]: r for r in json.loads((local_out / "results.json").read_text())["rows"]}
    assert doc["counts"] == {"ok": 4, "failed": 0, "screened_out": 0}
    assert {r["point"] for r in doc["rows"]} == set(local)
    for r in doc["rows"]:  # same ids (config, seed, data, version), same metrics, same bytes as the embedded run
        for column in ("status", "accuracy_int8", "accuracy_float", "size_tflite_bytes", "size_gzip_bytes",
                       "params", "macs", "pareto", "tflite"):
            assert r[column] == local[r["point"]][column], (r["point"], column)
        assert sha256_file(out / r["tflite"]) == sha256_file(local_out / r["tflite"]), r["point"]
    rows = {p.parent.name: json.loads(p.read_text()) for p in out.glob("points/*/point.json")}
    worker_ids = {node_id for node_id, _ in workers.values()}
    assert {row["node"] for row in rows.values()} <= worker_ids  # never on the head (no CPUs there)
    assert {nodes_done[p] for p in nodes_done} == worker_ids  # both worker nodes built points
    # Finished points were stored once and never retrained; the trial on the killed node ran again elsewhere.
    assert {p: sha256_file(out / "points" / p / "point.json") for p in kept} == kept
    assert all(rows[p]["attempts"] == 1 for p in kept)
    retried = [p for p, row in rows.items() if row["attempts"] > 1]
    assert len(retried) == 1 and rows[retried[0]]["node"] != killed_id, {p: r["attempts"] for p, r in rows.items()}
    assert not list(out.glob("points/.*"))  # no half-written point folder
