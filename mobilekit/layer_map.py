"""One identity per layer: a .tflite's ops and tensors named by the Keras layer they came from.

The converter names each op's output tensor after the Keras layer that made it
(``model/quant_conv1_relu/Relu;model/quant_conv1/BiasAdd;...``); a weight tensor carries its layer's name
among its path parts. :class:`LayerMap` reads those names once per file and answers every question the kit
asks about them: the layer key of an op output (what ``mobilekit numerics`` prints, ``--keep-float`` matches
and Model Explorer colours), the op scopes ai-edge-quantizer selects layers by, and the Keras layer a weight
tensor or an op's weights belong to (the report's per-layer sparsity). numerics, precision, ptq,
model_explorer and the build's weight report all use it; none parses tensor names itself.

Example: ``LayerMap.of(content).key_of_tensor[op.outputs[0]]`` -> ``"fire2_squeeze1x1_relu"``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from mobilekit.tflite_file import TfliteFile


def output_key(tensor_name: str) -> str:
    """The Keras layer an op output belongs to: ``model/quant_conv1_relu/Relu;...`` -> ``conv1_relu``."""
    parts = tensor_name.split(";")[0].split("/")
    layer = parts[1] if len(parts) > 2 else parts[0]
    return layer[len("quant_"):] if layer.startswith("quant_") else layer


def weight_layer(tensor_name: str, layer_names) -> str:
    """The Keras layer (one of ``layer_names``) a weight tensor came from: the longest one among the tensor
    name's parts (``quant_`` prefixed or not); the tensor's own name when none is."""
    parts = tensor_name.replace(";", "/").split("/")
    found = [n for n in layer_names if n in parts or f"quant_{n}" in parts]
    return max(found, key=len) if found else tensor_name


@dataclass
class LayerMap:
    """The layer identity of one .tflite, built once (:meth:`of` caches it per file content).

    ``key_of_tensor``: every op output tensor's layer key (graph outputs are ``output0``, ``output1``, ...).
    ``keys``: the layer keys in graph order. ``scopes``: per key, ``(AEQ op scope, converter node name)`` of its
    ops (AEQ's scope of an op is its output tensor names each followed by ``;``; the node name is the first
    output's name). ``tensor_names``: per key, the names of its ops' output tensors.
    """

    file: TfliteFile
    key_of_tensor: dict[int, str] = field(default_factory=dict)
    scopes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    tensor_names: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def of(content: bytes) -> "LayerMap":
        return LayerMap.build(TfliteFile(content))

    @staticmethod
    def build(f: TfliteFile) -> "LayerMap":
        m = LayerMap(f)
        graph_outputs = {t.index: f"output{i}" for i, t in enumerate(f.outputs)}
        for op in f.ops:
            for index in op.outputs:
                if index >= 0:
                    key = graph_outputs.get(index, output_key(f.tensors[index].name))
                    m.key_of_tensor[index] = key
                    m.tensor_names.setdefault(key, []).append(f.tensors[index].name)
            names = [f.tensors[i].name for i in op.outputs if i >= 0 and f.tensors[i].name]
            if names:
                m.scopes.setdefault(m.key_of_tensor[op.outputs[0]], []).append(("".join(n + ";" for n in names),
                                                                                names[0]))
        return m

    @property
    def keys(self) -> list[str]:
        return list(self.tensor_names)

    def op_key(self, op) -> str | None:
        """The layer key of an op (its first output's), None for an op without outputs."""
        return self.key_of_tensor.get(op.outputs[0]) if op.outputs else None

    def keras_layers(self, layer_names) -> dict[str, str]:
        """{layer key: the Keras layer (one of ``layer_names``) its weights came from} for every conv / FC op
        whose weights carry one of those names (a conv's fused output carries its ReLU's name; its weights,
        the conv's)."""
        names = list(layer_names)
        out: dict[str, str] = {}
        for op, t in self.file.weights():
            key, layer = self.op_key(op), weight_layer(t.name, names)
            if key is not None and layer in names:
                out.setdefault(key, layer)
        return out
