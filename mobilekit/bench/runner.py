"""Batch-1 inference in LiteRT (ai_edge_litert): accuracy over a test set, latency."""

from __future__ import annotations

import numpy as np

from mobilekit.errors import MobilekitError
from mobilekit.litert import delegate_partitions, make_interpreter, quantize_input  # noqa: F401  (re-exported)


def evaluate_tflite(content: bytes, x_float: np.ndarray, labels: np.ndarray,
                    num_threads: int = 1) -> dict:
    """Top-1 accuracy of the .tflite over ``x_float`` one image at a time (batch 1).

    Example: ``evaluate_tflite(open(p, "rb").read(), to_float(x_test), y_test)``.
    """
    interpreter = make_interpreter(content, num_threads)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    if tuple(inp["shape"][1:]) != tuple(x_float.shape[1:]):
        raise MobilekitError(f"images of shape {x_float.shape[1:]} do not fit the model input "
                             f"{tuple(inp['shape'][1:])}")
    predictions = np.empty(len(x_float), np.int64)
    for i in range(len(x_float)):
        interpreter.set_tensor(inp["index"], quantize_input(x_float[i:i + 1], inp))
        interpreter.invoke()
        predictions[i] = int(np.argmax(interpreter.get_tensor(out["index"])[0]))
    return {"top1": float(np.mean(predictions == labels)), "images": int(len(labels)),
            "predictions": predictions}


def measure_latency(content: bytes, num_runs: int = 100, warmup_runs: int = 10,
                    num_threads: int = 1, seed: int = 0) -> dict:
    """Batch-1 ``invoke()`` latency in ms on random inputs in the input's dtype range.

    The harness's numbers for one model (``mobilekit.bench.harness.benchmark``):
    median, p90, p99, mean, min, std and the settings, measured after warm-up.
    """
    from mobilekit.bench.harness import benchmark

    r = benchmark({"model": content}, num_runs=num_runs, warmup_runs=warmup_runs, num_threads=num_threads,
                  seed=seed)["model"]
    keep = ("median_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "std_ms", "init_ms", "first_inference_ms",
            "num_runs", "warmup_runs", "num_threads")
    return {k: r[k] for k in keep}
