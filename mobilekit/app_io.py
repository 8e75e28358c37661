"""The app interface of a full-int8 file: the type its inputs and outputs have for the app (uint8, int8 or
float32) around the int8 body the converter made, rewritten on the flatbuffer (no TensorFlow).

The kit's analyses (numerics, precision, bias correction) work on the int8 interface; a build puts the chosen
one on last, before the TFLite metadata (which describes the input and output the app sees). Runtimes read the
result as usual: LiteRT runs the interface ops as ordinary QUANTIZE / DEQUANTIZE kernels outside XNNPACK's
partition (uint8) or inside it (float32).
"""

from __future__ import annotations

from mobilekit.errors import MobilekitError
from mobilekit.tflite_file import TfliteFile

IO_TYPES = ("uint8", "int8", "float32")  # the app interface of a full-int8 file; the first is the default


def with_io(content: bytes, io: str, pixels: tuple[float, float] | None = None) -> bytes:
    """The quantized file ``content`` (int8 input and output; int16 for ``float32``) with the app interface ``io``.

    ``"int8"`` returns ``content`` as it is. ``"uint8"`` puts a QUANTIZE (uint8 -> int8) before each input and a
    QUANTIZE (int8 -> uint8) after each output, scale unchanged and zero point + 128: the same arithmetic shifted
    by 128, so every answer is the int8 file's + 128 (what TFLiteConverter makes for ``inference_input_type =
    tf.uint8``). ``"float32"`` puts a QUANTIZE (float -> int8) before and a DEQUANTIZE after: the int8 body with
    float in and out (an int16x8 file's int16 body too). The interface tensors take the old names (the app's), the
    body's get ``_int8`` (``_int16``) after theirs; signatures follow. Nothing else changes. Put it on before the
    TFLite metadata (refused after).

    ``pixels``: the build's ``(scale, offset)`` of ``float = pixel * scale + offset``. With it a uint8 input is the
    pixel itself (that scale, zero point ``-offset / scale``), as MediaPipe Tasks and the Task Library feed a uint8
    model whatever its input scale says: the QUANTIZE in front then requantizes to the body's input scale, a pure
    shift by 128 when the body's input is already ``pixel - 128`` (the usual case: QAT, percentile ranges), one
    rounding otherwise (a min-max calibration whose images never reached 255).
    """
    if io not in IO_TYPES:
        raise MobilekitError(f"io must be one of {', '.join(IO_TYPES)}; received {io!r}")
    if io == "int8":
        return content
    from ai_edge_litert import schema_py_generated as schema

    from mobilekit.tflite_file import inline_buffers, model_object, pack_model

    tfl = TfliteFile(content)
    if "TFLITE_METADATA" in tfl.metadata_buffers:
        raise MobilekitError("the app interface goes on before the TFLite metadata (which describes it)")
    body = ("INT8",) if io == "uint8" else ("INT8", "INT16")
    odd = [f"{t.name!r} is {t.dtype}" for t in tfl.inputs + tfl.outputs
           if t.dtype not in body or t.scale is None or t.scale.size != 1]
    if odd:
        raise MobilekitError(f"a {io} interface goes around {' or '.join(body).lower()} inputs and outputs with one "
                             "scale each: " + "; ".join(odd))
    model = model_object(inline_buffers(content))
    graph = model.subgraphs[0]
    outer_type = schema.TensorType.UINT8 if io == "uint8" else schema.TensorType.FLOAT32
    quantize = _opcode(model, schema.BuiltinOperator.QUANTIZE)
    out_code = quantize if io == "uint8" else _opcode(model, schema.BuiltinOperator.DEQUANTIZE)
    moved = {}
    for side, code in (("inputs", quantize), ("outputs", out_code)):
        for inner in [int(i) for i in getattr(graph, side)]:
            moved[inner] = outer = _outer_tensor(model, graph, inner, outer_type)
            if side == "inputs" and io == "uint8" and pixels is not None:
                graph.tensors[outer].quantization.scale, graph.tensors[outer].quantization.zeroPoint = \
                    _pixel_quantization(*pixels)
            op = schema.OperatorT()
            op.opcodeIndex = code
            op.inputs, op.outputs = ([outer], [inner]) if side == "inputs" else ([inner], [outer])
            if side == "inputs":
                graph.operators.insert(0, op)
            else:
                graph.operators.append(op)
        setattr(graph, side, [moved[int(i)] for i in getattr(graph, side)])
    _renumber_signatures(model, moved)
    return pack_model(model)


def body(content: bytes) -> bytes:
    """``content`` without its app interface (:attr:`TfliteFile.interface`): the quantized body's own tensors as
    the inputs and outputs, under the app's names, as the kit's analyses (numerics, precision) read a file. A file
    without one comes back unchanged. The TFLite metadata (which describes the interface) is dropped with it."""
    from mobilekit.tflite_file import inline_buffers, model_object, pack_model

    tfl = TfliteFile(content)
    ops = tfl.interface["ops"]
    if not ops:
        return content
    model = model_object(inline_buffers(content))
    graph = model.subgraphs[0]
    inputs = {int(i) for i in graph.inputs}
    inner = {}  # interface tensor -> the body's
    for index in ops:
        op = tfl.ops[index]
        outer, kept = (op.inputs[0], op.outputs[0]) if op.inputs[0] in inputs else (op.outputs[0], op.inputs[0])
        inner[outer] = kept
        graph.tensors[kept].name, graph.tensors[outer].name = graph.tensors[outer].name, graph.tensors[kept].name
    graph.operators = [op for i, op in enumerate(graph.operators) if i not in ops]
    model.metadata = [m for m in model.metadata or [] if m.name not in (b"TFLITE_METADATA", "TFLITE_METADATA")]
    graph.inputs = [inner.get(int(i), int(i)) for i in graph.inputs]
    graph.outputs = [inner.get(int(i), int(i)) for i in graph.outputs]
    _renumber_signatures(model, inner)
    return pack_model(model)


def _renumber_signatures(model, tensors: dict[int, int]) -> None:
    """Point the signatures' inputs and outputs at the graph's new tensors (``{old index: new index}``)."""
    for signature in model.signatureDefs or []:
        for item in [*(signature.inputs or []), *(signature.outputs or [])]:
            item.tensorIndex = tensors.get(item.tensorIndex, item.tensorIndex)


def _pixel_quantization(scale: float, offset: float) -> tuple[list[float], list[int]]:
    """(scale, zero point) lists of a uint8 tensor whose value is the pixel of ``float = pixel * scale + offset``."""
    zero_point = -offset / scale
    if not (0 <= zero_point <= 255 and abs(zero_point - round(zero_point)) < 1e-6):
        raise MobilekitError(f"pixels * {scale:g} + {offset:g} is no uint8 quantization: the zero point "
                             f"{zero_point:g} is not a whole number in 0..255")
    return [float(scale)], [int(round(zero_point))]


def _opcode(model, builtin: int) -> int:
    """The index of ``builtin``'s operator code in ``model``, added (version 1) when missing."""
    from ai_edge_litert import schema_py_generated as schema

    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _outer_tensor(model, graph, inner: int, dtype: int) -> int:
    """A new tensor in front of (or after) the int8 tensor ``inner``: its shape and name, type ``dtype`` (uint8:
    the same scale, zero point + 128; float32: no quantization), an empty buffer of its own."""
    from ai_edge_litert import schema_py_generated as schema

    t = graph.tensors[inner]
    outer = schema.TensorT()
    outer.shape, outer.shapeSignature, outer.type, outer.name = t.shape, t.shapeSignature, dtype, t.name
    suffix = "_int16" if t.type == schema.TensorType.INT16 else "_int8"
    t.name = (t.name.decode() if isinstance(t.name, bytes) else t.name) + suffix
    if dtype == schema.TensorType.UINT8:
        outer.quantization = schema.QuantizationParametersT()
        outer.quantization.scale = [float(t.quantization.scale[0])]
        outer.quantization.zeroPoint = [int(t.quantization.zeroPoint[0]) + 128]
    outer.buffer = len(model.buffers)
    model.buffers.append(schema.BufferT())
    graph.tensors.append(outer)
    return len(graph.tensors) - 1


def same_answers(content: bytes, reference: bytes, x_float) -> dict:
    """``content`` and ``reference`` (the same body, other interfaces) run on every image of ``x_float`` (NHWC
    floats, each quantized to its input as the kit's evaluation does): ``{"images": n, "identical": k}``, k the
    images whose outputs, dequantized with each output's own scale and zero point, are equal to the bit."""
    import numpy as np

    from mobilekit.litert import outputs_on

    runs = zip(outputs_on(content, x_float), outputs_on(reference, x_float))
    identical = sum(all(np.array_equal(a, b) for a, b in zip(x, y)) for x, y in runs)
    return {"images": len(x_float), "identical": int(identical)}
