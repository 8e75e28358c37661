"""`mobilekit explore --address` on a multi-node Ray cluster on this machine: 1 vs 2 worker nodes, the driver's
overhead per point, the time a node lost mid-sweep costs, and what a 200-point sweep would take on more nodes.

A Ray head with no CPUs (the driver's node: trials never run there) and worker nodes of one CPU each
(``ray.cluster_utils.Cluster``), the README's 2x2 SqueezeNet grid at the tests' tiny budget, each run in a
fresh sweep folder (temporary, not committed):

- ``one_node`` / ``two_nodes``: the same 4 points on 1 and on 2 worker nodes (wall time, speed-up);
- ``node_lost``: 2 worker nodes, one removed (its processes killed) as soon as the first point is stored;
  Tune runs the lost trial again on the other node (``--max-failures``);
- the driver's overhead per point: putting the sweep and its data in the object store once, and storing
  each point's returned files (timed in the driver), against the point's own build time.

Writes benchmarks/results/explore_cluster.json. Usage: python benchmarks/explore_cluster.py [--paper-only]
(``--paper-only``: recompute the 200-point table from the committed measurements).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

BASE = {"arch": "squeezenet1_1", "limit_train": 2000, "limit_test": 500, "input_size": 32, "epochs": 0.3,
        "prune_epochs": 0.1, "qat_epochs": 0.1, "min_stage_steps": 0}
SPACE = {"squeeze_ratio": ["0.25", "0.5"], "pct3x3": ["0.25", "0.5"]}
PAPER_POINTS = 200
WORKERS = (1, 2, 4, 16, 64)
CORES_PER_WORKER = 2
NETWORK_BYTES_PER_S = 125e6  # an assumed 1 Gbit/s link between driver and workers (not measured here)


def _run(address: str, out: Path, on_first_point=None) -> dict:
    from mobilekit.explore.engine import explore
    from mobilekit.explore.space import ExploreConfig

    watcher = None
    if on_first_point is not None:
        def watch():
            while not list(out.glob("points/*/point.json")):
                time.sleep(0.2)
            on_first_point()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    t0 = time.perf_counter()
    doc = explore(ExploreConfig(base=BASE, space=SPACE, out=str(out), address=address))
    wall = time.perf_counter() - t0
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("points/*/point.json"))]
    assert doc["counts"]["ok"] == len(rows) == 4, doc["counts"]
    return {"wall_seconds": round(wall, 1), "points": len(rows),
            "point_seconds_mean": round(sum(r["point_seconds"] for r in rows) / len(rows), 2),
            "attempts": {r["point"]: r["attempts"] for r in rows},
            "nodes_used": len({r["node"] for r in rows}), "driver": doc["driver"],
            "sha256": {r["point"]: r["sha256"] for r in rows}}


def paper_table(point_s: float, driver_s: float, shipped: int, returned: int) -> list[dict]:
    """Wall time of a PAPER_POINTS sweep on W two-core workers (one point per core at a time), from the measured
    per-point build time and driver cost; transfers at NETWORK_BYTES_PER_S through the driver's link."""
    rows = []
    for w in WORKERS:
        slots = w * CORES_PER_WORKER
        compute = math.ceil(PAPER_POINTS / slots) * point_s  # rounds of points, all slots busy
        driver = PAPER_POINTS * driver_s  # serial in the driver: storing each point
        network = (w * shipped + PAPER_POINTS * returned) / NETWORK_BYTES_PER_S  # all through the driver's link
        wall = max(compute, driver + network)
        rows.append({"workers": w, "concurrent_points": slots, "compute_seconds": round(compute, 1),
                     "driver_seconds": round(driver, 1), "network_seconds": round(network, 1),
                     "wall_seconds": round(wall, 1), "limit": "workers" if compute >= driver + network
                     else "driver and its link"})
    base = rows[0]["wall_seconds"]
    for r in rows:
        r["speedup"] = round(base / r["wall_seconds"], 2)
    return rows


def driver_bound_from(point_s: float, driver_s: float, shipped: int, returned: int) -> int | None:
    """The fewest workers at which the driver and its link, not the workers, set a PAPER_POINTS sweep's wall time."""
    for w in range(1, 4097):
        compute = math.ceil(PAPER_POINTS / (w * CORES_PER_WORKER)) * point_s
        if PAPER_POINTS * driver_s + (w * shipped + PAPER_POINTS * returned) / NETWORK_BYTES_PER_S > compute:
            return w
    return None


def on_paper(result: dict) -> dict:
    """The 200-point table from the measured part of ``result``."""
    two, d = result["two_nodes"], result["driver_overhead"]
    args = (two["point_seconds_mean"], d["seconds_per_point"], d["shipped_bytes"], d["returned_bytes_per_point"])
    return {"assumptions": f"{CORES_PER_WORKER}-core workers, one point per core at a time, the per-point build time "
                           f"and driver cost measured here, {NETWORK_BYTES_PER_S * 8 / 1e9:g} Gbit/s between driver "
                           "and workers (assumed), data shipped once per worker",
            "rows": paper_table(*args), "driver_bound_from_workers": driver_bound_from(*args)}


def main(argv=None) -> int:
    if "--paper-only" in (argv if argv is not None else sys.argv[1:]):  # re-derive the table from the measurements
        path = RESULTS / "explore_cluster.json"
        result = json.loads(path.read_text())
        result["paper_200_points"] = on_paper(result)
        path.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    from ray.cluster_utils import Cluster

    from explore_squeezenet import cpu_features
    from mobilekit.progress import console

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    result = {"points": 4, "base": BASE, "space": SPACE}
    try:
        with tempfile.TemporaryDirectory(prefix="explore-cluster-") as tmp:
            first = cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            console.print("[bold]1 worker node[/bold]")
            result["one_node"] = _run(cluster.address, Path(tmp) / "one")
            second = cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            console.print("[bold]2 worker nodes[/bold]")
            result["two_nodes"] = _run(cluster.address, Path(tmp) / "two")
            lost = {}

            def remove():
                lost["at"] = time.perf_counter()
                cluster.remove_node(second, allow_graceful=False)

            console.print("[bold]2 worker nodes, one removed after the first point[/bold]")
            result["node_lost"] = _run(cluster.address, Path(tmp) / "lost", on_first_point=remove)
            del first
    finally:
        cluster.shutdown()
    one, two, lost_run = result["one_node"], result["two_nodes"], result["node_lost"]
    assert one["sha256"] == two["sha256"] == lost_run["sha256"], "the same points must give the same bytes"
    result["speedup_two_nodes"] = round(one["wall_seconds"] / two["wall_seconds"], 2)
    result["node_lost"]["seconds_lost"] = round(lost_run["wall_seconds"] - two["wall_seconds"], 1)
    d = two["driver"]
    per_point = (d["ship_seconds"] + d["store_seconds"]) / two["points"]
    result["driver_overhead"] = {
        "seconds_per_point": round(per_point, 4), "point_build_seconds": two["point_seconds_mean"],
        "fraction_of_build": round(per_point / two["point_seconds_mean"], 5), "goal_fraction": 0.03,
        "shipped_bytes": d["shipped_bytes"], "returned_bytes_per_point": d["stored_bytes"] // two["points"]}
    result["paper_200_points"] = on_paper(result)
    result["host"] = cpu_features()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explore_cluster.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"1 node {one['wall_seconds']} s, 2 nodes {two['wall_seconds']} s (x{result['speedup_two_nodes']}), "
          f"node lost {lost_run['wall_seconds']} s; driver {per_point * 1000:.0f} ms a point "
          f"({result['driver_overhead']['fraction_of_build']:.2%} of a build)")
    return 0


def summary_line(result: dict) -> str:
    """The README's line, from explore_cluster.json."""
    one, two, lost, d = result["one_node"], result["two_nodes"], result["node_lost"], result["driver_overhead"]
    return (f"- On a Ray cluster (`python benchmarks/explore_cluster.py`, worker nodes of 1 CPU on {result['host']['model']}): "
            f"{two['points']} tiny points took {one['wall_seconds']:.0f} s on 1 worker node and {two['wall_seconds']:.0f} s "
            f"on 2 (**x{result['speedup_two_nodes']:.2f}**), {lost['wall_seconds']:.0f} s with a node killed after the first "
            f"point (every point ok, the same bytes); the driver's overhead is {d['fraction_of_build']:.2%} of a point's "
            f"build (goal <= {d['goal_fraction']:.0%}). More nodes on paper: [docs/explore.md](docs/explore.md).")


def to_markdown(result: dict) -> str:
    """The docs' block, from explore_cluster.json."""
    h = result["host"]
    one, two, lost, d = result["one_node"], result["two_nodes"], result["node_lost"], result["driver_overhead"]
    out = [f"Measured with `python benchmarks/explore_cluster.py` on {h['model']} ({h['cores']} cores; {h['summary']}): "
           f"a Ray head with no CPUs and worker nodes of 1 CPU each on this machine, the 2x2 SqueezeNet grid at a tiny "
           f"budget ({result['points']} points, same bytes in every run).", "",
           "| run | wall | points' nodes | attempts |", "|---|---|---|---|",
           f"| 1 worker node | {one['wall_seconds']:.0f} s | {one['nodes_used']} | "
           f"{sum(one['attempts'].values())} for {one['points']} points |",
           f"| 2 worker nodes | {two['wall_seconds']:.0f} s (x{result['speedup_two_nodes']:.2f}) | {two['nodes_used']} | "
           f"{sum(two['attempts'].values())} for {two['points']} points |",
           f"| 2 worker nodes, one killed after the first point | {lost['wall_seconds']:.0f} s "
           f"({lost['seconds_lost']:+.0f} s) | {lost['nodes_used']} | "
           f"{sum(lost['attempts'].values())} for {lost['points']} points |", "",
           f"The killed node's trial ran again on the other node (one more attempt); the {lost['seconds_lost']:.0f} s "
           "it cost are that trial's lost work plus the rest of the sweep on one node.", "",
           f"Driver overhead: {d['seconds_per_point'] * 1000:.0f} ms a point (the data, {d['shipped_bytes'] / 1e6:.1f} MB, "
           f"put in the object store once; each point's {d['returned_bytes_per_point'] / 1e6:.1f} MB of files stored), "
           f"{d['fraction_of_build']:.2%} of a point's {d['point_build_seconds']:.0f} s build (goal <= "
           f"{d['goal_fraction']:.0%}); timed in the driver (Tune's own per-trial work is inside the walls above).", "",
           f"A {PAPER_POINTS}-point sweep on paper ({result['paper_200_points']['assumptions']}):", "",
           "| workers | points at once | compute | driver | network | wall | speed-up | limit |",
           "|---|---|---|---|---|---|---|---|"]
    paper = result["paper_200_points"]
    for r in paper["rows"]:
        out.append(f"| {r['workers']} | {r['concurrent_points']} | {r['compute_seconds']:.0f} s | "
                   f"{r['driver_seconds']:.0f} s | {r['network_seconds']:.0f} s | {r['wall_seconds']:.0f} s | "
                   f"x{r['speedup']:.1f} | {r['limit']} |")
    out += ["", f"From {paper['driver_bound_from_workers']} workers on, the driver and its link (storing each point, "
                "the data going to every worker once) take longer than the workers' rounds of points: more workers "
                "stop helping a sweep of this size at this budget. Longer points (a real budget) move that limit out "
                "in proportion."]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
