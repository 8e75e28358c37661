"""Instructions per batch-1 ``invoke()`` on an emulated ARM core, and the check against the host run."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mobilekit.errors import MobilekitError


def _window_stats(values: list[int]) -> dict:
    lo, hi = min(values), max(values)
    median = int(np.median(values))
    return {"instructions": median, "min": lo, "max": hi, "repeats": values, "identical": lo == hi,
            "spread": (hi - lo) / median if median else 0.0}


def _host_outputs(content: bytes, threads: int, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from mobilekit.litert import make_interpreter

    it = make_interpreter(content, threads, use_xnnpack=True)
    for d, value in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], value)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def _abs_diff(h: np.ndarray, g: np.ndarray) -> float:
    """The largest absolute difference of two outputs over their finite values; infinity when a NaN or an infinity
    of one is not the other's (a detector's unused rows may hold them: equal ones are no difference)."""
    a, b = h.astype(np.float64).reshape(-1), g.astype(np.float64).reshape(-1)
    if a.shape != b.shape:
        return float("inf")
    finite = np.isfinite(a) & np.isfinite(b)
    same_special = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
    if not (finite | same_special).all():
        return float("inf")
    return float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))


def _compare(host: list[np.ndarray], guest: list[np.ndarray]) -> dict:
    """Bit-exact or not, the max absolute difference, and for float32 outputs the max difference in
    units in the last place (ULP: adjacent float32 values differ by 1)."""
    exact = all(h.dtype == g.dtype and h.shape == g.shape and h.tobytes() == g.tobytes()
                for h, g in zip(host, guest))
    diff = max((_abs_diff(h, g) for h, g in zip(host, guest)), default=0.0)
    ulps = [int(np.max(np.abs(h.view(np.int32).astype(np.int64) - g.view(np.int32).astype(np.int64))))
            for h, g in zip(host, guest) if h.dtype == np.float32 and h.size and (h >= 0).all() and (g >= 0).all()]
    return {"bit_exact": exact, "max_abs_diff": diff, **({"max_ulp_diff": max(ulps)} if ulps else {})}


def count_instructions(content: bytes, cpu: str, threads=(1, 4), repeats: int = 2, inputs=None,
                       seed: int = 0) -> dict:
    """Run ``content`` in the arm64 root on qemu's ``cpu`` with XNNPACK and count instructions.

    For each thread count: instructions of the first ``invoke()`` (it packs the weights)
    and of ``repeats`` more, summed over all threads; a count is ``identical`` when the
    repeats agree, otherwise ``spread`` is (max - min) / median. The outputs of the last
    run are compared with a host run on the same inputs (bit-exact or the max difference).

    Example: ``count_instructions(open("m.tflite", "rb").read(), "cortex-a76")["threads"]["1"]["instructions"]``

    Raises:
        MobilekitError: unknown CPU, the root is not set up, or the emulated run failed.
    """
    from mobilekit.litert import make_interpreter, random_inputs
    from mobilekit.emulate.root import CPUS, THREAD_SLOTS, check_cpu, require_ready, run_guest

    check_cpu(cpu)
    threads = list(dict.fromkeys(int(t) for t in threads))
    if not threads or min(threads) < 1 or max(threads) > THREAD_SLOTS:
        raise MobilekitError(f"emulated thread counts must be 1..{THREAD_SLOTS}; received {threads}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise MobilekitError(f"repeats must be a positive int; received {repeats!r}")
    root = require_ready()
    if inputs is None:
        inputs = random_inputs(make_interpreter(content), seed)
    with tempfile.TemporaryDirectory(prefix="mobilekit-emulate-") as d:
        d = Path(d)
        (d / "model.tflite").write_bytes(content)
        np.savez(d / "inputs.npz", **{f"input{i}": x for i, x in enumerate(inputs)})
        t0 = time.monotonic()
        (d / "job.json").write_text(json.dumps({"model": "model.tflite", "inputs": "inputs.npz", "out": "out.npz",
                                                "threads": threads, "repeats": repeats}))
        r = run_guest(root, cpu, d, ["job.json"], counts=d / "counts.txt")
        wall = time.monotonic() - t0
        if r.returncode != 0:
            last = (r.stderr.strip() or "no output").splitlines()[-1]
            raise MobilekitError(f"the emulated run on {cpu} failed (exit {r.returncode}): {last}")
        meta = json.loads(r.stdout.strip().splitlines()[-1])
        rows = [tuple(int(v) for v in line.split()) for line in (d / "counts.txt").read_text().splitlines()]
        with np.load(d / "out.npz") as z:
            guest = {k: z[k] for k in z.files}
    if len(rows) != len(threads) * (1 + repeats):
        raise MobilekitError(f"the counting plugin recorded {len(rows)} windows, expected "
                             f"{len(threads) * (1 + repeats)}")
    per_threads, matches = {}, {}
    for k, n in enumerate(threads):
        block = rows[k * (1 + repeats):(k + 1) * (1 + repeats)]
        per_threads[str(n)] = {**_window_stats([total for total, _, _ in block[1:]]),
                               "first_invoke_instructions": block[0][0],
                               "calling_thread_instructions": _window_stats([c for _, c, _ in block[1:]])["instructions"],
                               "threads_active": max(a for _, _, a in block[1:]),
                               "xnnpack_partitions": meta["partitions"][str(n)]}
        outs = [guest[f"t{n}_output{i}"] for i in range(sum(1 for key in guest if key.startswith(f"t{n}_")))]
        matches[str(n)] = _compare(_host_outputs(content, n, inputs), outs)
    return {"cpu": cpu, "dotprod": CPUS[cpu].dotprod, "threads": per_threads, "matches_host": matches,
            "bit_exact": all(m["bit_exact"] for m in matches.values()),
            "guest": {k: meta[k] for k in ("python", "numpy", "ai_edge_litert")},
            "emulated_wall_s": round(wall, 1)}
