"""One build trained data-parallel (`mobilekit build --workers N`): measured on a local Ray cluster, scaled on paper.

A Ray head with no CPUs (the driver's node) and two worker nodes of one CPU each (``ray.cluster_utils.Cluster``):

- per arch (squeezenet1_0, squeezenet1_1, mobilenet_v2, efficientnet_lite0, each at its Fashion-MNIST build's input
  size and the default global batch of 128): a fit of STEPS steps on 1 and on 2 workers, its steady seconds per step,
  and the gradient exchange (an all-reduce of the trainable variables' shapes, timed on the workers after the fit;
  plus one of a single float, the per-message latency);
- the default build (`mobilekit build --arch squeezenet`) on 1 and on 2 worker nodes: wall time and speed-up.

On paper, from those measurements and FireCaffe's communication model (Iandola et al., 2016): per step, compute is
``c * global_batch / p`` (``c``: one example's forward and backward on one core, measured) and the exchange of the
gradients' ``B`` bytes is, for ``p`` workers on links of ``BW`` bytes/s and a per-message latency ``a``:

- a parameter server: ``2 * p * B / BW`` (every gradient in and every weight out through the server's link);
- a reduction tree (FireCaffe): ``2 * log2(p) * (B / BW + a)``;
- a ring all-reduce (today's, MultiWorkerMirroredStrategy's): ``2 * (p - 1) / p * B / BW + 2 * (p - 1) * a``.

The table gives the ring's speed-up of one build for 1..128 workers at 10 and 100 Gbit/s at the build's global batch
of 128, and the global batch each worker count needs to keep 75% of its time computing (where a fixed batch stops
scaling: the per-worker batch shrinks while the exchange does not).

Writes benchmarks/results/data_parallel.json. Usage: python benchmarks/data_parallel.py [--paper-only] [--no-build]
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

ARCHS = ("squeezenet1_0", "squeezenet1_1", "mobilenet_v2", "efficientnet_lite0")
STEPS = 30
GLOBAL_BATCH = 128
WORKERS = (1, 2, 4, 8, 32, 128)
GBITS = (10, 100)
BUILD_RUNS = 2  # default builds per worker count, alternated (the host's speed drifts by 10% over minutes)
EFFICIENCY = 0.75  # the share of a step spent computing that the "needed global batch" keeps


def probe(address: str, arch: str, workers: int) -> dict:
    """One fit of STEPS steps of ``arch`` on ``workers`` Ray Train workers; its record (run in a process of its own)."""
    from mobilekit.backend import keras
    from mobilekit.complexity import complexity
    from mobilekit.pipeline import parallel, stages
    from mobilekit.pipeline.config import BuildConfig
    from mobilekit.progress import console

    cfg = BuildConfig(arch=arch, workers=workers, address=address, batch_size=GLOBAL_BATCH, limit_train=GLOBAL_BATCH
                      * STEPS, limit_test=100, sparsity=0.5, seed=0)
    parallel.start(cfg, console)
    try:
        data = stages.load_data(cfg, console)
        keras.utils.set_random_seed(cfg.seed)
        model = stages.create_model(cfg, data)
        record = parallel.fit(model, data.ds.x_train, data.ds.y_train, cfg, STEPS, cfg.lr, f"{arch} probe", [], 0,
                              None)
    finally:
        parallel.stop()
    params = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    return {"arch": arch, "workers": workers, "input_size": cfg.input_size, "trainable_params": params,
            "gradient_bytes": 4 * params, "params": complexity(model)["params"],
            **{k: record[k] for k in ("step_s", "compute_s", "exchange_s", "exchange_latency_s", "first_step_s",
                                      "seconds")}}


def _probe_in_process(address: str, arch: str, workers: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--probe", address, arch, str(workers)], capture_output=True,
                         text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"probe {arch} x{workers} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def build_wall(address: str, workers: int) -> dict:
    """The default build on ``workers`` workers: wall time, its stages, its distributed section's summary."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dp-build-") as tmp:
        t0 = time.perf_counter()
        code = subprocess.run([str(Path(sys.executable).parent / "mobilekit"), "build", "--arch", "squeezenet",
                               "--address", address, "--workers", str(workers), "--out", tmp + "/b"],
                              capture_output=True, text=True, timeout=7200)
        wall = time.perf_counter() - t0
        if code.returncode != 0:
            raise SystemExit(f"default build on {workers} worker(s) failed: {code.stderr[-2000:]}")
        report = json.loads(Path(tmp, "b", "report.json").read_text())
    d = report["distributed"]
    return {"workers": workers, "wall_seconds": round(wall, 1), "stage_seconds": report["stage_seconds"],
            "tflite_int8": report["accuracy"]["tflite_int8"], "keras_float": report["accuracy"]["keras_float"],
            "restarts": d["restarts"], "nodes": len(set(d["nodes"])), "seconds_per_step": d["seconds_per_step"],
            "fits": [{k: f[k] for k in ("title", "steps", "seconds", "step_s", "exchange_s")} for f in d["fits"]]}


def summarise_builds(runs: dict) -> dict:
    """Each worker count's first run with its mean wall time over BUILD_RUNS runs (and each run's), the speed-up of
    the means."""
    out = {}
    for key, workers in (("one", 1), ("two", 2)):
        walls = [r["wall_seconds"] for r in runs[workers]]
        out[key] = {**runs[workers][0], "wall_seconds": round(sum(walls) / len(walls), 1), "wall_runs": walls}
    return {**out, "runs": BUILD_RUNS, "explore_speedup": 1.74,
            "speedup": round(out["one"]["wall_seconds"] / out["two"]["wall_seconds"], 2)}


def comm_seconds(model: str, p: int, nbytes: float, bw: float, latency: float) -> float:
    """Seconds a step spends exchanging ``nbytes`` of gradients among ``p`` workers (see the module's docstring)."""
    if p == 1:
        return 0.0
    if model == "parameter_server":
        return 2 * p * nbytes / bw
    if model == "reduction_tree":
        return 2 * math.log2(p) * (nbytes / bw + latency)
    return 2 * (p - 1) / p * nbytes / bw + 2 * (p - 1) * latency


def needed_batch(c: float, comm: float, p: int) -> int:
    """The smallest global batch (a multiple of ``p``) whose compute, ``c`` a example, is EFFICIENCY of the step."""
    if comm == 0:
        return p
    per_worker = math.ceil(EFFICIENCY / (1 - EFFICIENCY) * comm / c)
    return p * max(1, per_worker)


def on_paper(measured: list[dict]) -> dict:
    """Per arch: the predicted speed-up of one build for WORKERS at GBITS, at the global batch GLOBAL_BATCH, and the
    global batch each needs; the three communication models side by side at 32 workers."""
    out = {}
    for arch in ARCHS:
        one = next(m for m in measured if m["arch"] == arch and m["workers"] == 1)
        two = next(m for m in measured if m["arch"] == arch and m["workers"] == 2)
        c = one["step_s"] / GLOBAL_BATCH  # one example's forward + backward on one core
        latency = two["exchange_latency_s"] / 2  # a 2-worker ring all-reduce is 2 messages
        nbytes = one["gradient_bytes"]
        rows = []
        for p in WORKERS:
            row = {"workers": p, "per_worker_batch": GLOBAL_BATCH / p}
            for g in GBITS:
                bw = g * 1e9 / 8
                comm = comm_seconds("ring", p, nbytes, bw, latency)
                step = c * GLOBAL_BATCH / p + comm
                row[f"speedup_{g}g"] = round(c * GLOBAL_BATCH / step, 2)
                row[f"comm_ms_{g}g"] = round(comm * 1000, 3)
                row[f"needed_global_batch_{g}g"] = needed_batch(c, comm, p)
            rows.append(row)
        peak = {g: max(rows, key=lambda r: r[f"speedup_{g}g"]) for g in GBITS}
        models = {m: {f"{g}g": round(comm_seconds(m, 32, nbytes, g * 1e9 / 8, latency) * 1000, 2) for g in GBITS}
                  for m in ("parameter_server", "reduction_tree", "ring")}
        out[arch] = {"compute_ms_per_example": round(c * 1000, 3), "gradient_bytes": nbytes,
                     "latency_ms": round(latency * 1000, 3), "rows": rows,
                     "best": {f"{g}g": {"workers": peak[g]["workers"], "speedup": peak[g][f"speedup_{g}g"]}
                              for g in GBITS},
                     "comm_ms_at_32_workers": models}
    return {"assumptions": f"compute per example and per-message latency measured here (one core a worker, loopback); "
                           f"links of {' and '.join(map(str, GBITS))} Gbit/s; global batch {GLOBAL_BATCH} as the build "
                           f"trains; 'needed' keeps {EFFICIENCY:.0%} of each step computing",
            "archs": out}


def main(argv=None) -> int:
    argv = argv if argv is not None else sys.argv[1:]
    if argv[:1] == ["--probe"]:
        print(json.dumps(probe(argv[1], argv[2], int(argv[3]))))
        return 0
    path = RESULTS / "data_parallel.json"
    if "--paper-only" in argv:
        result = json.loads(path.read_text())
        result["paper"] = on_paper(result["measured"])
        path.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    from ray.cluster_utils import Cluster

    from explore_squeezenet import cpu_features
    from mobilekit.progress import console

    previous = json.loads(path.read_text()) if path.is_file() else {}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    result = {"steps": STEPS, "global_batch": GLOBAL_BATCH, "measured": [], "host": cpu_features()}
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        for arch in ARCHS:
            for workers in (1, 2):
                console.print(f"[bold]{arch} on {workers} worker(s)[/bold]")
                result["measured"].append(_probe_in_process(cluster.address, arch, workers))
        if "--no-build" in argv and "default_build" in previous:
            result["default_build"] = previous["default_build"]
        elif "--no-build" not in argv:
            runs = {1: [], 2: []}
            for attempt in range(BUILD_RUNS):  # 1, 2, 1, 2: a slow spell of the host falls on both
                for workers in (1, 2):
                    console.print(f"[bold]the default build on {workers} worker node(s), run {attempt + 1}[/bold]")
                    runs[workers].append(build_wall(cluster.address, workers))
            result["default_build"] = summarise_builds(runs)
    finally:
        cluster.shutdown()
    result["paper"] = on_paper(result["measured"])
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    for m in result["measured"]:
        print(f"{m['arch']} x{m['workers']}: step {m['step_s']:.3f} s, exchange {m['exchange_s'] * 1000:.1f} ms")
    if "default_build" in result:
        b = result["default_build"]
        print(f"default build: {b['one']['wall_seconds']} s on 1, {b['two']['wall_seconds']} s on 2 (x{b['speedup']})")
    return 0


def summary_line(result: dict) -> str:
    """The README's line, from data_parallel.json."""
    b, h = result.get("default_build"), result["host"]
    line = f"- Measured (`python benchmarks/data_parallel.py`, worker nodes of 1 CPU on {h['model']}): "
    if b:
        line += (f"the default build took {b['one']['wall_seconds']:.0f} s on 1 worker and "
                 f"{b['two']['wall_seconds']:.0f} s on 2 (mean of {b['runs']}; **x{b['speedup']:.2f}**; "
                 f"explore's separate builds x{b['explore_speedup']:.2f}); ")
    sq = next(m for m in result["measured"] if m["arch"] == "squeezenet1_1" and m["workers"] == 2)
    return line + (f"a SqueezeNet 1.1 step on 2 workers spends {sq['exchange_s'] * 1000:.0f} ms of "
                   f"{sq['step_s'] * 1000:.0f} ms exchanging gradients. Scaling to 128 workers on paper: "
                   "[docs/data-parallel.md](docs/data-parallel.md).")


def _walls(run: dict) -> str:
    return f" (runs: {', '.join(f'{w:.0f}' for w in run['wall_runs'])} s)" if len(run["wall_runs"]) > 1 else ""


def _outside(fit: dict) -> float:
    """A fit's seconds outside its steps (at its median step)."""
    return fit["seconds"] - fit["steps"] * fit["step_s"]


def _bound(b: dict) -> str:
    """How fast one build could get on two workers here, from the one-node run's fits and the two-node run's steps."""
    wall, fits = b["one"]["wall_seconds"], b["one"]["fits"]
    trained = sum(f["seconds"] for f in fits)
    serial = wall - trained  # the driver's own work: start, data, evaluation, conversion
    halved = wall / (serial + trained / 2)
    stepped = wall / (serial + sum(_outside(f1) + f1["steps"] * f2["step_s"]
                                   for f1, f2 in zip(fits, b["two"]["fits"])))
    return (f"What bounds one build here: {serial:.0f} s of the {wall:.0f} s on one node are outside the fits (the "
            f"process's start, reading the data, making and evaluating the models between fits, converting, the "
            f"report), and stay on the driver. With every fit taking half its time on two workers the build would "
            f"reach at most **x{halved:.2f}**; with the step two workers measured above and each fit's other "
            f"seconds as on one node, x{stepped:.2f}. "
            f"explore's x{b['explore_speedup']:.2f} comes from builds that share nothing, the driver's work included.")


def to_markdown(result: dict) -> str:
    """The docs' block, from data_parallel.json."""
    h = result["host"]
    out = [f"Measured with `python benchmarks/data_parallel.py` on {h['model']} ({h['cores']} cores; {h['summary']}): a "
           "Ray head with no CPUs and two worker nodes of one CPU each on this machine (loopback between them), "
           f"{result['steps']} steps at a global batch of {result['global_batch']}.", "",
           "| arch | gradient MB | step, 1 worker | step, 2 workers | of which exchange | speed-up |",
           "|---|---:|---:|---:|---:|---:|"]
    for arch in ARCHS:
        one = next(m for m in result["measured"] if m["arch"] == arch and m["workers"] == 1)
        two = next(m for m in result["measured"] if m["arch"] == arch and m["workers"] == 2)
        out.append(f"| {arch} | {one['gradient_bytes'] / 1e6:.2f} | {one['step_s'] * 1000:.0f} ms | "
                   f"{two['step_s'] * 1000:.0f} ms | {two['exchange_s'] * 1000:.1f} ms | "
                   f"x{one['step_s'] / two['step_s']:.2f} |")
    b = result.get("default_build")
    if b:
        out += ["", f"The default build (`mobilekit build --arch squeezenet`), {b['runs']} run(s) each, "
                    f"alternated: on 1 worker node {b['one']['wall_seconds']:.0f} s{_walls(b['one'])}; on 2 "
                    f"{b['two']['wall_seconds']:.0f} s{_walls(b['two'])} (**x{b['speedup']:.2f}** of the means; "
                    f"explore's separate builds reached x{b['explore_speedup']:.2f} on the same set-up). int8 "
                    f"accuracy {b['one']['tflite_int8']:.2%} and {b['two']['tflite_int8']:.2%} (first runs).", "",
                "By fit, first runs (steps; seconds on 1 worker node, on 2; the median step on 1, on 2; the seconds "
                "outside the steps, the fit's seconds less its steps at the median step: making the model again, "
                "tracing, the first step, on 1, on 2):", ""]
        out += [f"- {f1['title']}: {f1['steps']} steps; {f1['seconds']:.0f} s, {f2['seconds']:.0f} s; "
                f"{f1['step_s'] * 1000:.0f} ms, {f2['step_s'] * 1000:.0f} ms; "
                f"{_outside(f1):.0f} s, {_outside(f2):.0f} s"
                for f1, f2 in zip(b["one"]["fits"], b["two"]["fits"])]
        out += ["", _bound(b)]
    paper = result["paper"]
    out += ["", f"On paper ({paper['assumptions']}): the ring all-reduce's predicted speed-up of one build, and the "
                "global batch that keeps 75% of a step computing:", ""]
    head = "| arch | " + " | ".join(f"{p} workers" for p in WORKERS) + " |"
    out += [head, "|---|" + "---:|" * len(WORKERS)]
    for arch, a in paper["archs"].items():
        for g in GBITS:
            cells = [f"x{r[f'speedup_{g}g']:.1f} (batch {r[f'needed_global_batch_{g}g']:,})" for r in a["rows"]]
            out.append(f"| {arch}, {g} Gbit/s | " + " | ".join(cells) + " |")
    out += ["", "At the build's global batch of 128 the best worker count and its speed-up (beyond it the per-worker "
                "batch is too small for the exchange it pays):", ""]
    for arch, a in paper["archs"].items():
        best = "; ".join(f"{g} Gbit/s: {a['best'][f'{g}g']['workers']} workers, x{a['best'][f'{g}g']['speedup']:.1f}"
                         for g in GBITS)
        m = a["comm_ms_at_32_workers"]
        out.append(f"- {arch} ({a['gradient_bytes'] / 1e6:.1f} MB of gradients, {a['compute_ms_per_example']:.2f} ms "
                   f"an example): {best}. Exchange at 32 workers, 10 Gbit/s: parameter server "
                   f"{m['parameter_server']['10g']:.0f} ms, reduction tree {m['reduction_tree']['10g']:.1f} ms, ring "
                   f"{m['ring']['10g']:.1f} ms a step.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
