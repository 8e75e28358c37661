"""Read a .tflite flatbuffer without TensorFlow: tensors, ops, weights, checks.

Everything mobilekit claims about a produced file (all-int8, sparsity per
layer, sizes) is read back from the bytes with LiteRT's generated schema,
not taken from the converter's word.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from mobilekit.errors import MobilekitError

_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_NUMPY_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8,
                "INT64": np.int64, "INT16": np.int16, "INT8": np.int8, "FLOAT64": np.float64,
                "BOOL": np.bool_}
FLOAT_TYPES = ("FLOAT16", "FLOAT32", "FLOAT64", "BFLOAT16")
# TFLite's detection post-processing (decode + NMS), a custom op every LiteRT build registers: a detector's tail.
POSTPROCESS_OP = "CUSTOM:TFLite_Detection_PostProcess"
# Ops whose input 1 is a weight tensor, and their layout's output-channel axis.
WEIGHT_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "TRANSPOSE_CONV": 0}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None
    scale: np.ndarray | None
    zero_point: np.ndarray | None


@dataclass
class Op:
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class TfliteFile:
    """A parsed .tflite model (first subgraph).

    Example: ``TfliteFile.read("build/squeezenet/squeezenet.tflite").op_counts()``.
    """

    def __init__(self, content: bytes):
        if len(content) < 8 or content[4:8] != b"TFL3":
            raise MobilekitError("not a TFLite flatbuffer (missing the 'TFL3' identifier)")
        try:
            self._model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
        except Exception as e:  # the generated reader raises anything on bad offsets
            raise MobilekitError(f"corrupt TFLite flatbuffer: {type(e).__name__}: {e}") from None
        if not self._model.subgraphs:
            raise MobilekitError("TFLite flatbuffer has no subgraph")
        self.content = bytes(content)

    @classmethod
    def read(cls, path) -> "TfliteFile":
        with open(path, "rb") as f:
            return cls(f.read())

    @cached_property
    def tensors(self) -> list[Tensor]:
        out = []
        buffers = self._model.buffers or []
        for i, t in enumerate(self._model.subgraphs[0].tensors or []):
            dtype = _TYPE_NAMES.get(t.type, str(t.type))
            data = None
            buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
            raw = None
            if buf is not None and buf.data is not None and len(buf.data):
                raw = bytes(bytearray(buf.data))
            elif buf is not None and (buf.offset or 0) > 1 and buf.size:  # stored after the flatbuffer (AEQ)
                end = int(buf.offset) + int(buf.size)
                raw = self.content[int(buf.offset):end] if end <= len(self.content) else None
            if raw is not None and dtype in _NUMPY_TYPES and len(raw) % np.dtype(_NUMPY_TYPES[dtype]).itemsize == 0:
                data = np.frombuffer(raw, _NUMPY_TYPES[dtype])
                shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
                if int(np.prod(shape)) == data.size:
                    data = data.reshape(shape)
            q = t.quantization
            scale = np.asarray(q.scale, np.float32) if q is not None and q.scale is not None else None
            zp = np.asarray(q.zeroPoint, np.int64) if q is not None and q.zeroPoint is not None else None
            name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
            out.append(Tensor(i, name, shape, dtype, data, scale, zp))
        return out

    @cached_property
    def ops(self) -> list[Op]:
        codes = self._model.operatorCodes or []
        out = []
        for i, op in enumerate(self._model.subgraphs[0].operators or []):
            code = codes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
            if name == "CUSTOM":
                custom = code.customCode
                name = "CUSTOM:" + (custom.decode() if isinstance(custom, bytes) else str(custom))
            out.append(Op(i, name, tuple(int(x) for x in op.inputs), tuple(int(x) for x in op.outputs)))
        return out

    def custom_options(self, op: Op) -> dict:
        """A custom op's options (a FlexBuffer map, as TFLite_Detection_PostProcess stores ``max_detections`` ...);
        {} when it has none or they do not decode."""
        raw = self._model.subgraphs[0].operators[op.index].customOptions
        if raw is None or not len(raw):
            return {}
        from flatbuffers import flexbuffers

        try:
            options = flexbuffers.Loads(bytes(bytearray(raw)))
        except Exception:  # untrusted bytes: anything the decoder trips on means "no options"
            return {}
        return options if isinstance(options, dict) else {}

    def signature_outputs(self) -> dict[str, int]:
        """The first signature's output names and their tensor indices ({} without a signature)."""
        defs = self._model.signatureDefs or []
        if not defs:
            return {}
        return {(o.name.decode() if isinstance(o.name, bytes) else str(o.name)): int(o.tensorIndex)
                for o in defs[0].outputs or []}

    def detector_outputs(self) -> dict[int, tuple[str, list[int]]] | None:
        """For a file ending in TFLite_Detection_PostProcess, its four outputs' roles and the shapes the op gives them
        at run time (the file stores none): ``{tensor index: (role, shape)}``; None for other files."""
        op = next((op for op in self.ops if op.name == POSTPROCESS_OP), None)
        if op is None or len(op.outputs) != 4:
            return None
        n = self.custom_options(op).get("max_detections")
        n = int(n) if isinstance(n, int) and n > 0 else -1
        shapes = ([1, n, 4], [1, n], [1, n], [1])
        return {index: (role, shape) for index, role, shape in
                zip(op.outputs, ("boxes", "classes", "scores", "count"), shapes)}

    @cached_property
    def metadata_buffers(self) -> dict[str, bytes]:
        """The model's named metadata entries (``TFLITE_METADATA``, ``min_runtime_version``, ...) and their bytes."""
        buffers = self._model.buffers or []
        out = {}
        for entry in self._model.metadata or []:
            name = entry.name.decode("utf-8", "replace") if isinstance(entry.name, bytes) else str(entry.name)
            buf = buffers[entry.buffer] if 0 <= entry.buffer < len(buffers) else None
            if buf is not None and buf.data is not None:
                out[name] = bytes(bytearray(buf.data))
        return out

    @property
    def inputs(self) -> list[Tensor]:
        return [self.tensors[i] for i in self._model.subgraphs[0].inputs]

    @property
    def outputs(self) -> list[Tensor]:
        return [self.tensors[i] for i in self._model.subgraphs[0].outputs]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.name] = counts.get(op.name, 0) + 1
        return dict(sorted(counts.items()))

    def weights(self) -> list[tuple[Op, Tensor]]:
        """(op, weight tensor) for every conv / fully-connected op with constant weights."""
        out = []
        for op in self.ops:
            if op.name in WEIGHT_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0:
                t = self.tensors[op.inputs[1]]
                if t.data is not None:
                    out.append((op, t))
        return out

    def weight_params(self) -> int:
        """Parameters as the papers count them: conv / fully-connected weights and biases stored in the file."""
        return sum(int(self.tensors[i].data.size) for op in self.ops if op.name in WEIGHT_OPS
                   for i in op.inputs[1:3] if i >= 0 and self.tensors[i].data is not None)

    def structure_problems(self) -> list[str]:
        """Inconsistencies that could make a native reader crash: indices out of range,
        constant data whose size disagrees with its tensor's shape and type, negative dims."""
        graph = self._model.subgraphs[0]
        raw = graph.tensors or []
        n_tensors, n_buffers = len(raw), len(self._model.buffers or [])
        n_codes = len(self._model.operatorCodes or [])
        problems = []
        for i, op in enumerate(graph.operators or []):
            if not 0 <= op.opcodeIndex < n_codes:
                problems.append(f"op #{i} has opcode index {op.opcodeIndex} of {n_codes}")
            for t in list(op.inputs if op.inputs is not None else []) + list(op.outputs if op.outputs is not None else []):
                if not -1 <= int(t) < n_tensors:
                    problems.append(f"op #{i} refers to tensor {int(t)} of {n_tensors}")
        for t in list(graph.inputs if graph.inputs is not None else []) + list(
                graph.outputs if graph.outputs is not None else []):
            if not 0 <= int(t) < n_tensors:
                problems.append(f"graph input/output tensor {int(t)} of {n_tensors}")
        for i, t in enumerate(raw):
            if not 0 <= t.buffer < max(n_buffers, 1):
                problems.append(f"tensor #{i} refers to buffer {t.buffer} of {n_buffers}")
            shape = list(t.shape) if t.shape is not None else []
            if any(int(d) < 0 for d in shape):
                problems.append(f"tensor #{i} has shape {shape}")
        if problems:
            return problems
        for t in self.tensors:
            if t.data is not None and t.data.size != int(np.prod(t.shape, dtype=np.int64)):
                problems.append(f"tensor {t.name!r}: {t.data.size} stored values for shape {list(t.shape)}")
        return problems

    @cached_property
    def interface(self) -> dict:
        """The app interface around an int8 body: ``{"input": type, "output": type, "ops": {op indices}}``.

        An int8 file's inputs and outputs are its int8 tensors (``"int8"``, no ops). A ``uint8`` one starts with a
        QUANTIZE (uint8 -> int8) per input and ends with a QUANTIZE (int8 -> uint8) per output (mobilekit.app_io:
        the output's zero point 128 up, the input the pixel itself); a ``float32`` one with a QUANTIZE (float ->
        int8, or int16) and a DEQUANTIZE.
        A type is ``"mixed"`` when the inputs (or outputs) differ, and the tensor's own dtype otherwise."""
        users, producer = {}, {}
        for op in self.ops:
            for i in op.inputs:
                users.setdefault(i, []).append(op)
            for i in op.outputs:
                producer[i] = op
        # (side, outer dtype) -> the op that may stand between it and the int8 body
        kinds = {("input", "UINT8"): "QUANTIZE", ("input", "FLOAT32"): "QUANTIZE",
                 ("output", "UINT8"): "QUANTIZE", ("output", "FLOAT32"): "DEQUANTIZE"}
        side_types, ops = {}, set()
        for side, tensors in (("input", self.inputs), ("output", self.outputs)):
            types = set()
            for t in tensors:
                types.add(t.dtype.lower())
                near = users.get(t.index, []) if side == "input" else [producer[t.index]] if t.index in producer else []
                op = near[0] if len(near) == 1 else None
                if (op is None or op.name != kinds.get((side, t.dtype)) or len(op.inputs) != 1
                        or len(op.outputs) != 1 or min(op.inputs[0], op.outputs[0]) < 0):
                    continue
                inner = self.tensors[op.outputs[0] if side == "input" else op.inputs[0]]
                if inner.dtype == "INT8" or inner.dtype == "INT16" and t.dtype == "FLOAT32":
                    ops.add(op.index)
            side_types[side] = types.pop() if len(types) == 1 else "mixed"
        return {**side_types, "ops": ops}

    def float_problems(self) -> list[str]:
        """Why this file is not fully int8 between its app interface (:attr:`interface`): float tensors, float or
        (de)quantize ops; inputs and outputs that are neither int8 nor an interface over int8."""
        ops = self.interface["ops"]
        outer = {self.tensors[i].index for op in self.ops if op.index in ops for i in (*op.inputs, *op.outputs)
                 if self.tensors[i].dtype != "INT8"}
        problems = [f"tensor {t.name!r} is {t.dtype}" for t in self.tensors if t.dtype in FLOAT_TYPES
                    and t.index not in outer]
        problems += [f"op #{op.index} {op.name} converts to or from float" for op in self.ops
                     if op.index not in ops and (op.name == "DEQUANTIZE"
                     or (op.name == "QUANTIZE" and self.tensors[op.inputs[0]].dtype in FLOAT_TYPES))]
        for t in self.inputs + self.outputs:
            if t.dtype != "INT8" and t.index not in outer:
                problems.append(f"model {'input' if t in self.inputs else 'output'} {t.name!r} is {t.dtype}")
        return problems

    def weight_sparsity(self) -> dict[str, dict]:
        """{weight tensor name: what the stored weights of each conv / FC op hold}.

        ``zeros``/``sparsity``; ``distinct_values`` in the tensor and the most in one output
        channel (clusters survive per tensor or only per channel); ``two_of_four``: the fraction
        of groups of 4 consecutive input-channel weights with at least 2 zeros (None when the
        input channels are not a multiple of 4).
        """
        out = {}
        for op, t in self.weights():
            zeros = int(np.count_nonzero(t.data == 0))
            d = t.data if op.name != "DEPTHWISE_CONV_2D" else np.moveaxis(t.data, -1, 0)
            per_channel = max(int(np.unique(c).size) for c in d.reshape(d.shape[0], -1))
            groups = t.data.reshape(-1, 4) if op.name != "DEPTHWISE_CONV_2D" and t.shape[-1] % 4 == 0 else None
            out[t.name] = {"op": op.name, "shape": list(t.shape), "dtype": t.dtype,
                           "params": int(t.data.size), "zeros": zeros,
                           "sparsity": zeros / t.data.size,
                           "distinct_values": int(np.unique(t.data).size),
                           "max_distinct_per_channel": per_channel,
                           "two_of_four": None if groups is None else float(np.mean((groups == 0).sum(1) >= 2))}
        return out


def model_object(content: bytes):
    """The flatbuffer as LiteRT's generated object model (schema.ModelT), for edits; :func:`pack_model` writes it."""
    return schema.ModelT.InitFromPackedBuf(bytearray(content), 0)


def pack_model(model) -> bytes:
    """A schema.ModelT serialised as a .tflite (the TFL3 identifier), buffers inside the flatbuffer."""
    import flatbuffers

    builder = flatbuffers.Builder(1024 * 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def inline_buffers(content: bytes) -> bytes:
    """``content`` with every buffer stored after the flatbuffer (ai-edge-quantizer's layout: offset and size
    past the end) moved into the flatbuffer, the same weights: anything that re-serialises the model
    (the metadata populator, an interface rewrite) would drop them. A file without such buffers comes back
    unchanged."""
    model = model_object(content)
    outside = [b for b in model.buffers or [] if (b.offset or 0) > 1 and b.size]
    if not outside:
        return content
    for b in outside:
        b.data, b.offset, b.size = np.frombuffer(content[int(b.offset):int(b.offset) + int(b.size)], np.uint8), 0, 0
    return pack_model(model)
