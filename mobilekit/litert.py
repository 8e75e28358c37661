"""LiteRT in one leaf module: interpreter creation, input quantisation, outputs on images, random inputs, delegate
partitions, flatbuffer sniffing. It imports nothing of mobilekit but the error type, so bench, emulate, build and the
benchmarks all stand on it without leaning on each other.
"""

from __future__ import annotations

import numpy as np

from mobilekit.errors import MobilekitError


def make_interpreter(content: bytes, num_threads: int = 1, use_xnnpack: bool = True, keep_tensors: bool = False):
    """A ready LiteRT interpreter for ``content`` (XNNPACK on by default, like a phone). ``keep_tensors``: every
    tensor readable after ``invoke`` (the same kernels, more memory), e.g. the inputs of the last op."""
    import warnings

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from mobilekit.backend import quiet_native_stderr  # LiteRT's "Created ... XNNPACK delegate" INFO line

    resolver = (OpResolverType.AUTO if use_xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        with quiet_native_stderr(), warnings.catch_warnings():
            if keep_tensors:
                warnings.simplefilter("ignore")  # LiteRT's note that keeping every tensor is for debugging
            interpreter = Interpreter(model_content=content, num_threads=num_threads,
                                      experimental_op_resolver_type=resolver,
                                      experimental_preserve_all_tensors=keep_tensors)
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


def dequantized(value: np.ndarray, detail: dict) -> np.ndarray:
    """An interpreter output as float32: ``(q - zero_point) * scale`` when quantized, as it is when float32."""
    if value.dtype == np.float32:
        return value
    scale, zero_point = detail["quantization"]
    return (value.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def outputs_on(content: bytes, x_float: np.ndarray) -> list[list[np.ndarray]]:
    """Every image of ``x_float`` (NHWC floats) through ``content`` at batch 1, quantized to its input as the kit's
    evaluation does: per image, each output dequantized (:func:`dequantized`)."""
    interpreter = make_interpreter(content)
    inp, outs = interpreter.get_input_details()[0], interpreter.get_output_details()
    rows = []
    for i in range(len(x_float)):
        interpreter.set_tensor(inp["index"], quantize_input(x_float[i:i + 1], inp))
        interpreter.invoke()
        rows.append([dequantized(interpreter.get_tensor(o["index"]), o) for o in outs])
    return rows


def random_inputs(interpreter, seed: int = 0) -> list[np.ndarray]:
    """One random batch per input, uniform over the dtype's range (floats in [0, 1))."""
    rng = np.random.default_rng(seed)
    values = []
    for d in interpreter.get_input_details():
        if np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            values.append(rng.integers(info.min, info.max, size=d["shape"], endpoint=True, dtype=d["dtype"]))
        else:
            values.append(rng.random(size=d["shape"]).astype(d["dtype"]))
    return values


def is_tflite(content: bytes) -> bool:
    """True when ``content`` carries the TFLite flatbuffer identifier (TFL3)."""
    return len(content) >= 8 and content[4:8] == b"TFL3"


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
