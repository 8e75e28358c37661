"""Batch-1 inference in LiteRT (ai_edge_litert): accuracy over a test set, latency."""

from __future__ import annotations

import numpy as np

from mobilekit.errors import MobilekitError


def make_interpreter(content: bytes, num_threads: int = 1, use_xnnpack: bool = True):
    """A ready LiteRT interpreter for ``content`` (XNNPACK on by default, like a phone)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = (OpResolverType.AUTO if use_xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        interpreter = Interpreter(model_content=content, num_threads=num_threads,
                                  experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise MobilekitError(f"LiteRT cannot load the model: {str(e).strip().splitlines()[0]}") from None
    return interpreter


def quantize_input(x_float: np.ndarray, detail: dict) -> np.ndarray:
    """Float inputs to the interpreter input's dtype with its scale and zero point."""
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x_float.astype(np.float32)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    q = np.round(x_float / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


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


def delegate_partitions(interpreter) -> tuple[int, list[str]]:
    """(number of delegate partitions, op names left outside any partition).

    LiteRT lists the original nodes followed by one DELEGATE node per partition;
    the ops a partition replaced are those on paths from its input tensors to its
    output tensors, found here by walking producers back from its outputs.
    """
    details = interpreter._get_ops_details()
    delegates = [d for d in details if d["op_name"] == "DELEGATE"]
    originals = [d for d in details if d["op_name"] != "DELEGATE"]
    producer = {int(t): d["index"] for d in originals for t in d["outputs"]}
    covered: set[int] = set()
    for d in delegates:
        boundary = {int(t) for t in d["inputs"]}
        stack = [int(t) for t in d["outputs"]]
        while stack:
            t = stack.pop()
            op = producer.get(t)
            if t in boundary or op is None or op in covered:
                continue
            covered.add(op)
            stack.extend(int(i) for i in details[op]["inputs"] if i >= 0)
    return len(delegates), [d["op_name"] for d in originals if d["index"] not in covered]
