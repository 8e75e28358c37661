"""`mobilekit build --workers N`: one build's training stages data-parallel on Ray Train.

The fast tests check the data split and the refusals. The slow ones start a cluster this test owns: a head with no CPUs
and three worker nodes of one CPU each (two for the workers, one spare, as a cluster's autoscaler would provide), each
in a mount namespace of its own where Fashion-MNIST and the test's folder are empty: the workers get the data through
Ray only.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import MOBILEKIT, kill_tree, ray_cluster, runs_under, sha256_file

PROBE = str(Path(__file__).parent / "dp_probe.py")

# Two workers against one after 10 Adam steps (BN-free SqueezeNet 1.1, global batch 64): the norm of the difference of
# all weights relative to the norm of what one worker's training changed (w2 - w1) / (w1 - w0). The ring all-reduce adds
# the two halves' gradients in another order than one process sums its batch, so float32 rounding differs (about 1e-7 of
# a gradient per step), and Adam's division by sqrt(v) passes it on, largest where a gradient is near zero; measured
# 8e-7 (local Ray) here. Training each worker alone on its rows (the negative control) differs by 1.1. The distillation
# fit (10 SGD steps) measured 8e-7 too, its control 1.2; a distiller that did not scale its loss per replica, 0.95.
# The eager fit (6 SGD steps, run as a build's few-step fits are) measured 1.5e-6, its control 0.94.
TOLERANCE = 1e-4


def test_global_order_is_epochs_of_permutations_split_evenly():
    """Every epoch of the global order is a permutation (no example dropped or seen twice), and the workers' rows of
    each global batch are disjoint and make it whole."""
    from mobilekit.pipeline.parallel import global_order, shard

    num, batch, steps, workers = 100, 20, 12, 4
    order = global_order(num, steps, batch, seed=3)
    assert order.shape == (steps * batch,)
    for epoch in range(2):
        assert sorted(order[epoch * num:(epoch + 1) * num]) == list(range(num))
    assert len(set(order[200:240])) == 40  # the third epoch's start
    shards = [shard(order, steps, workers, r) for r in range(workers)]
    for s in range(steps):
        rows = np.concatenate([sh[s * 5:(s + 1) * 5] for sh in shards])
        assert list(rows) == list(order[s * batch:(s + 1) * batch])
    resumed = shard(order, steps, workers, 1, start=7)
    assert list(resumed) == list(shards[1][7 * 5:])
    assert not np.array_equal(global_order(num, steps, batch, seed=4), order)


def test_rows_dataset_reads_the_order():
    """A worker's dataset yields exactly its rows, in order (read in chunks)."""
    from mobilekit.data import rows

    x = np.arange(50 * 2, dtype=np.uint8).reshape(50, 2)
    y = np.arange(50, dtype=np.int32)
    order = np.array([7, 3, 49, 0, 3, 21] * 3)
    got = list(rows(x, y, order, chunk=4).as_numpy_iterator())
    assert [int(b) for _, b in got] == list(order)
    assert all((a == x[b]).all() for a, b in got)


def test_settings_refused_in_one_line(cli_error):
    assert "workers must be an int in [1, 1024]" in cli_error("build", "--workers", "0")
    assert "does not divide among workers=3" in cli_error("build", "--workers", "3")
    assert "HOST:PORT" in cli_error("build", "--workers", "2", "--address", "ray://head:10001")
    assert "trains nothing" in cli_error("build", "--arch", "mobilenet_v2", "--weights", "imagenet", "--workers", "2")


def test_explore_leaves_workers_to_the_build(cli_run):
    """A sweep spreads whole builds: --workers is no explore flag, and a spec's base may not set it."""
    from mobilekit.errors import MobilekitError
    from mobilekit.explore.space import make_config

    with pytest.raises(MobilekitError, match="workers=2 is one build's own"):
        make_config("squeezenet1_1", {"workers": 2}, {})
    assert make_config("squeezenet1_1", {"workers": 1}, {})["workers"] == 1
    result = cli_run("explore", "--workers", "2", "--space", "squeeze_ratio=0.25,0.5")
    assert result.returncode == 2 and "unrecognized arguments: --workers" in result.stderr


@pytest.mark.needs_data
def test_unreachable_address_and_too_many_local_workers(cli_error, tmp_path):
    """Refused before any data is read or anything written: an address nobody answers, more workers than this
    machine's CPUs."""
    out = tmp_path / "out"
    line = cli_error("build", "--workers", "2", "--address", "127.0.0.1:1", "--out", out)
    assert "no Ray cluster answers at --address 127.0.0.1:1" in line
    many = 2 * (os.cpu_count() or 1)
    line = cli_error("build", "--workers", many, "--batch-size", many * 4, "--out", out)
    assert f"workers={many} is more than the {os.cpu_count()} CPUs of this machine" in line
    assert not out.exists()


def test_a_model_that_cannot_travel_is_refused():
    from mobilekit.backend import keras
    from mobilekit.errors import MobilekitError
    from mobilekit.pipeline.parallel import check_travels

    class Mine(keras.Model):  # a subclassed model: no config to rebuild it from
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Mine()
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(MobilekitError, match="--teacher 'm.keras' cannot travel to the Ray Train workers"):
        check_travels(model, "--teacher 'm.keras'")
    check_travels(keras.Sequential([keras.layers.Dense(2, input_shape=(3,))]), "a plain model")


def _tfmot_fit(kind: str, installed: bool) -> tuple[bytes, int, int]:
    """A tiny pruning or QAT fit under a one-device MirroredStrategy: (its weights' bytes, the MEAN reductions across
    replicas the fit asked for, the QAT ranges ``average_ranges`` then averaged)."""
    from mobilekit.backend import keras, tf, tfmot
    from mobilekit.optimize import prune, quantize_aware
    from mobilekit.pipeline import replica_updates

    undo = replica_updates.install() if installed else (lambda: None)
    try:
        replica_updates.forget_ranges()
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        means = []
        for method in ("reduce_to", "batch_reduce_to"):
            real = getattr(strategy.extended, method)

            def spy(op, *args, _real=real, **kwargs):
                means.append(op == tf.distribute.ReduceOp.MEAN)
                return _real(op, *args, **kwargs)

            setattr(strategy.extended, method, spy)
        keras.utils.set_random_seed(0)
        with strategy.scope():
            base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.ReLU(),
                                     keras.layers.Flatten(), keras.layers.Dense(3)])
            model = (prune(base, 0.5, end_step=4, frequency=2) if kind == "prune"
                     else quantize_aware(base, preserve_sparsity=False))
            model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(64, 8, 8, 3)).astype(np.float32), np.arange(64) % 3
        callbacks = [tfmot.sparsity.keras.UpdatePruningStep()] if kind == "prune" else []
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=callbacks)
        during = sum(means)  # the fit's, before average_ranges' own one
        ranges = replica_updates.average_ranges(strategy, model)
        return b"".join(np.asarray(w).tobytes() for w in model.get_weights()), during, ranges
    finally:
        undo()


@pytest.mark.slow  # trains (a few steps): the full lane (CI) runs it
@pytest.mark.parametrize("kind", ["prune", "qat"])
def test_workers_skip_tfmots_per_step_exchanges_with_the_same_values(kind):
    """On the workers, tfmot's pruning mask and QAT ranges are updated on each replica without a MEAN across replicas
    every step; with one replica (where that mean is the value itself) the weights come out bit for bit as tfmot's."""
    theirs, their_means, _ = _tfmot_fit(kind, installed=False)
    ours, our_means, ranges = _tfmot_fit(kind, installed=True)
    assert their_means > 0 and our_means == 0, (their_means, our_means)
    assert ours == theirs
    assert ranges == (0 if kind == "prune" else 4)  # QAT: the ReLU's and the Dense's output ranges, min and max


# A fresh process (MultiWorkerMirroredStrategy must come before any TensorFlow op): a QAT model with BatchNormalization
# made again as a worker makes it, with and without local_rebuild; prints the counts and whether the weights are equal.
REBUILD = """
import contextlib, json
import numpy as np
from mobilekit.backend import keras, tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
from tensorflow.python.distribute import collective_all_reduce_strategy
from mobilekit.optimize import quantize_aware
from mobilekit.pipeline import parallel, replica_updates

counts = {"first_values": 0, "reductions": 0}
for cls, name, key in ((collective_all_reduce_strategy.CollectiveAllReduceExtended,
                        "_get_variable_creator_initial_value", "first_values"),
                       (collective_all_reduce_strategy.CollectiveAllReduceExtended, "_reduce_to", "reductions")):
    def spy(self, *args, _real=getattr(cls, name), _key=key, **kwargs):
        counts[_key] += 1
        return _real(self, *args, **kwargs)
    setattr(cls, name, spy)
keras.utils.set_random_seed(0)
base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
                         keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(3)])
base.layers[1].moving_mean.assign([0.5, -1.0, 2.0, 0.25])  # statistics a worker must not lose
qat = quantize_aware(base, preserve_sparsity=False)
job = {"wrap": ("qat", {"preserve_sparsity": False, "preserve_clusters": False}), "json": parallel.to_json(base),
       "base_weights": base.get_weights(), "weights": qat.get_weights()}
out = {}
for local in (False, True):
    counts.update(first_values=0, reductions=0)
    keras.utils.set_random_seed(1)  # another worker's seed: its first values differ until set_weights
    with strategy.scope(), (replica_updates.local_rebuild(strategy) if local else contextlib.nullcontext()):
        model = parallel.rebuild(job)
        model.compile(keras.optimizers.Adam(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.optimizer.build(model.trainable_variables)
    out[str(local)] = dict(counts)  # before get_weights, whose reads of the statistics are the fit end's, not ours
    out[str(local)]["equal"] = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), job["weights"]))
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_worker_rebuilds_its_model_without_exchanges_and_with_the_same_weights():
    """local_rebuild: no variable asks the strategy for rank 0's first value and no BatchNormalization statistic is
    averaged across the workers while a worker makes its fit's model again, and the model holds what travelled."""
    result = subprocess.run([sys.executable, "-c", REBUILD], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    strategys, ours = out["False"], out["True"]
    # What MultiWorkerMirroredStrategy does by itself: with one worker these are local, with two each is an exchange.
    assert strategys["first_values"] > 50 and strategys["reductions"] > 4, strategys
    assert ours["first_values"] == 0 and ours["reductions"] == 0, ours
    assert strategys["equal"] and ours["equal"]


# --- on a cluster of three one-CPU worker nodes ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    private = tmp_path_factory.mktemp("dp_cluster")
    with ray_cluster(private, ("node_a", "node_b", "node_c")) as (address, workers):
        yield address, workers, private


def _probe(address: str, workers: int, mode: str, out: Path) -> dict:
    """The probe's three fits: {"plain": ..., "distill": ..., "eager": ...}, each its weights before and after and
    whether every replica ended the same."""
    result = subprocess.run([sys.executable, PROBE, address, str(workers), "10", mode, str(out)], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = np.load(out)

    def arrays(prefix):
        index = {int(k[len(prefix) + 1:]): k for k in saved.files
                 if k.startswith(prefix + "_") and k[len(prefix) + 1:].isdigit()}  # not "eager_…" flags
        return [saved[index[i]] for i in sorted(index)]

    return {"plain": {"weights": arrays("plain"), "initial": arrays("init"), "identical": bool(saved["identical"])},
            "distill": {"weights": arrays("distill"), "initial": arrays("dinit"),
                        "identical": bool(saved["distilled_identical"])},
            "eager": {"weights": arrays("eager"), "initial": arrays("einit"),
                      "identical": bool(saved["eagerly_identical"])},
            "nodes": list(saved["nodes"])}


def _norm(arrays) -> float:
    return float(np.sqrt(sum(np.sum(np.asarray(a, np.float64) ** 2) for a in arrays)))


def _drift(one: dict, other: dict) -> float:
    """How far ``other``'s weights are from ``one``'s, relative to how far ``one``'s training moved them."""
    moved = _norm([w - w0 for w, w0 in zip(one["weights"], one["initial"])])
    return _norm([a - b for a, b in zip(one["weights"], other["weights"])]) / moved


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.xdist_group("ray")
@pytest.mark.extended
def test_two_workers_reach_one_workers_weights(cluster, tmp_path):
    """Same seed, same global batch, 10 steps: two workers on two nodes end within TOLERANCE of one worker, and every
    replica holds the same weights, for a plain fit (Adam), a distillation fit from a teacher (SGD) and a plain fit of
    6 SGD steps run eagerly (as a build's few-step fits are). Negative control: each worker training alone on its rows
    (no exchange) is far outside it."""
    address, _, _ = cluster
    one = _probe(address, 1, "exchange", tmp_path / "one.npz")
    two = _probe(address, 2, "exchange", tmp_path / "two.npz")
    alone = _probe(address, 2, "alone", tmp_path / "alone.npz")
    assert len(set(two["nodes"])) == 2
    for fit in ("plain", "distill", "eager"):
        assert two[fit]["identical"], fit
        assert _norm([a - b for a, b in zip(one[fit]["initial"], two[fit]["initial"])]) == 0  # the same start
        assert _drift(one[fit], two[fit]) < TOLERANCE, fit
        assert _drift(one[fit], alone[fit]) > 1000 * TOLERANCE, fit
        assert not alone[fit]["identical"], fit  # the control's replicas went apart


# 64 float, 100 pruning and 50 QAT steps of batch 128 at 32x32 (a one-process build took 47 s alone here, 69 s at the
# default 48x48: the input size is not what these tests are about).
BUILD = ["build", "--arch", "squeezenet1_1", "--limit-train", "4096", "--limit-test", "1000", "--input-size", "32",
         "--epochs", "2", "--prune-epochs", "3", "--qat-epochs", "1", "--sparsity", "0.5", "--latency-runs", "5"]


def _keeper_state(address: str, driver_pid: int) -> dict:
    """The build's training progress, asked of its keeper actor from a process of its own."""
    from mobilekit.pipeline.parallel import NAMESPACE, keeper_name

    probe = ("import json, ray\n"
             f"ray.init(address={address!r}, namespace={NAMESPACE!r}, logging_level='ERROR', log_to_driver=False)\n"
             "try:\n"
             f"    print(json.dumps(ray.get(ray.get_actor({keeper_name(driver_pid)!r}).state.remote())))\n"
             "except ValueError:\n"
             "    print('{}')\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else {}


def _node_with_a_worker(workers: dict) -> str | None:
    """A live worker node running a Ray Train worker (``RayTrainWorker`` in its process title)."""
    return next((name for name, (_, proc) in workers.items()
                 if proc.poll() is None and runs_under(proc.pid, b"RayTrainWorker")), None)


def _kill_during(address: str, workers: dict, driver: subprocess.Popen, fit: int, checkpoint_step: int,
                 deadline_s: float = 900) -> tuple[str, int]:
    """Wait until the build's fit ``fit`` kept a checkpoint at ``checkpoint_step`` or later, then SIGKILL a worker node
    running one of its workers; (the node's name, the checkpoint step seen)."""
    deadline = time.monotonic() + deadline_s
    while True:
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the fit never reached its checkpoint"
        state = _keeper_state(address, driver.pid)
        if state.get("fit") == fit and state.get("checkpoint_step", 0) >= checkpoint_step:
            name = _node_with_a_worker(workers)
            if name is not None:
                kill_tree(workers[name][1])
                return name, state["checkpoint_step"]
        time.sleep(1)


@pytest.fixture(scope="module")
def one_process_build(tmp_path_factory):
    """The same build in one process: its int8 accuracy and the int8 file's sparsity."""
    folder = tmp_path_factory.mktemp("local")
    result = subprocess.run([MOBILEKIT, *BUILD, "--out", str(folder)], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((folder / "report.json").read_text())
    return {"accuracy": report["accuracy"]["tflite_int8"], "sparsity": report["sparsity"]["int8_weights"]}


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.xdist_group("ray")
@pytest.mark.extended
def test_a_build_on_two_nodes_survives_losing_one(cluster, one_process_build):
    """The build on two worker nodes, one SIGKILLed in the middle of pruning: the worker group restarts (on the spare
    node) from the last checkpoint, the build finishes with the restart in its report, every replica ends with the
    same weights and masks, the int8 file has the asked sparsity and an accuracy within the one-process spread."""
    address, workers, private = cluster
    out = private / "build"  # a folder the worker nodes cannot see: only the driver writes the build
    driver = subprocess.Popen([MOBILEKIT, *BUILD, "--address", address, "--workers", "2", "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        killed, seen = _kill_during(address, workers, driver, fit=1, checkpoint_step=10)  # the first of 9
        stdout, stderr = driver.communicate(timeout=1800)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, stderr[-3000:]
    assert "the worker group restarted from step" in stdout + stderr
    report = json.loads((out / "report.json").read_text())
    d = report["distributed"]
    assert d["workers"] == 2 and d["global_batch"] == 128 and d["per_worker_batch"] == 64
    assert d["restarts"] >= 1 and d["replicas_identical"]
    pruning = d["fits"][1]
    assert pruning["title"].startswith("pruning") and pruning["restarts"]
    assert pruning["restarts"][0]["resumed_at_step"] >= seen  # lost at most the steps since that checkpoint
    assert workers[killed][0] not in d["fits"][-1]["nodes"] and len(set(d["fits"][-1]["nodes"])) == 2
    assert all(len(set(f["weights_sha256"])) == 1 for f in d["fits"])  # weights and masks, every replica
    s = d["seconds_per_step"]
    assert 0 < s["gradient_exchange"] < s["step"] and abs(s["compute"] + s["gradient_exchange"] - s["step"]) < 1e-3
    assert report["sparsity"]["int8_weights"] == one_process_build["sparsity"]  # the asked 50% of every layer
    # Within the run-to-run spread of one-process builds: 3 sd of the difference of two accuracies on the same n test
    # images, 3 sqrt(2 p (1 - p) / n), 5.9 points at p = 0.74 and n = 1,000. Seeds 0-3 of this build in one process
    # reached 73.4, 74.4, 74.1 and 74.1% (Xeon, AVX-512 VNNI): 1 point apart, so a second one-process build in the
    # test (as before) only ever gave the bound this 3 sd, for 60-125 s of suite time.
    accuracy, local = report["accuracy"]["tflite_int8"], one_process_build["accuracy"]
    spread = 3 * np.sqrt(2 * local * (1 - local) / report["accuracy"]["test_images"])
    assert abs(accuracy - local) <= spread, (accuracy, local)
    assert "data-parallel training" in (out / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.xdist_group("ray")
@pytest.mark.extended
def test_a_build_that_cannot_finish_leaves_the_previous_folder(cluster, tmp_path):
    """--max-failures 0 and a worker node lost: one line, exit 2, and the earlier build's folder as it was. Then more
    workers than the cluster can place: refused up front, not waited for."""
    address, workers, private = cluster
    previous = private / "build"  # the build of the test before
    if not (previous / "report.json").is_file():
        pytest.skip("needs the build of test_a_build_on_two_nodes_survives_losing_one")
    before = {p.name: sha256_file(p) for p in previous.iterdir()}
    live = sum(proc.poll() is None for _, proc in workers.values())
    driver = subprocess.Popen([MOBILEKIT, *BUILD, "--address", address, "--workers", str(live), "--max-failures", "0",
                               "--out", str(previous)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        _kill_during(address, workers, driver, fit=0, checkpoint_step=1)
        _, stderr = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert driver.returncode == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[-1].startswith("mobilekit build: error: data-parallel float training failed on 2 workers after 0 "
                                "restart(s) (--max-failures 0): a worker was lost"), lines[-1]
    assert {p.name: sha256_file(p) for p in previous.iterdir()} == before
    t0 = time.monotonic()
    refused = subprocess.run([MOBILEKIT, *BUILD, "--address", address, "--workers", "4", "--out",
                              str(tmp_path / "never")], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "workers=4 is more than the" in refused.stderr, refused.stderr[-2000:]
    assert time.monotonic() - t0 < 120 and not (tmp_path / "never").exists()
