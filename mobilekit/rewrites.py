"""Export-time graph rewrites: the same function as the trained Keras model, fewer or cheaper ops.

The trained model and its reported params stay the paper's; :func:`rewrite` returns a new Keras
model for conversion only, each rewrite exact (checked on random inputs by :func:`check_exact`):

- ``pad-fold``: an explicit ZeroPadding2D before a "valid" conv, depthwise conv or max-pool becomes
  that layer's own "same" padding where TensorFlow's "same" puts the zeros in the same places
  (Caffe's ceil-mode pools, stride-1 convs). For a max-pool only when its input is >= 0 (after a
  ReLU), since "same" pooling ignores the padding instead of reading zeros.
- ``pad-grow``: the same, also where "same" pads one row fewer at the top (PyTorch's symmetric
  padding of a stride-2 conv on an even map): the kernel grows by one zero row/column at the end,
  so "same" reads the same inputs. No PAD op, more multiply-adds.
- ``normalization-fold``: a per-channel Rescaling before the first conv folded into the conv's
  weights (scale) and bias (offset). Where the conv reads padding (a ZeroPadding2D or "same"), the
  zeros were normalised values -- the mean colour in pixel units, not black -- so the padding
  becomes a border of that colour per channel (ConstantBorder: constant CONCATENATIONs, which
  XNNPACK delegates; PAD takes one value for all channels) and the conv "valid".
- ``space-to-depth-stem``: the first conv (stride 2, at most 4 input channels, even input) as
  SPACE_TO_DEPTH(2) + a stride-1 conv on 4x the channels with a ceil(k/2) kernel.

Which are on by default is decided on emulated ARM instruction counts (docs/graph-rewrites.md):
a rewrite that costs a cortex-a76 or cortex-a53 instructions is not a default.
"""

from __future__ import annotations

import copy

import numpy as np

from mobilekit.errors import MobilekitError

REWRITES = ("pad-fold", "pad-grow", "normalization-fold", "space-to-depth-stem")
# Measured choice (docs/graph-rewrites.md): the rewrites that cost no instructions on cortex-a76 or
# cortex-a53 for any arch; pad-grow and space-to-depth-stem cost some and are opt-in.
DEFAULT_REWRITES = ("pad-fold", "normalization-fold")
# Rewrites that keep every kernel as it is (only padding moves into the layer): the ones a QAT model can
# take before its quantization-aware training, the same function trained the same way.
QAT_REWRITES = ("pad-fold",)

_CONVS = ("Conv2D", "DepthwiseConv2D")
_NON_NEGATIVE = ("ReLU",)
_PASS_SIGN = ("Concatenate", "MaxPooling2D", "ZeroPadding2D")


def check_names(names) -> tuple[str, ...]:
    """``names`` as a tuple, each one of REWRITES (else a one-line error naming it)."""
    names = tuple(names)
    for name in names:
        if name not in REWRITES:
            raise MobilekitError(f"unknown graph rewrite {name!r}; choose from {', '.join(REWRITES)}")
    return names


class _Graph:
    """A functional model's config, edited by layer name."""

    def __init__(self, model):
        self.config = copy.deepcopy(model.get_config())
        self.shapes = {layer.name: layer.input_shape for layer in model.layers}
        self.weights = {layer.name: layer.get_weights() for layer in model.layers}

    def layer(self, name: str) -> dict:
        return next(entry for entry in self.config["layers"] if entry["name"] == name)

    def inputs(self, name: str) -> list[str]:
        nodes = self.layer(name)["inbound_nodes"]
        return [inbound[0] for inbound in nodes[0]] if nodes else []

    def consumers(self, name: str) -> list[str]:
        return [e["name"] for e in self.config["layers"] if name in self.inputs(e["name"])]

    def only_consumer(self, name: str) -> str | None:
        users = self.consumers(name)
        outputs = [o[0] for o in self.config["output_layers"]]
        return users[0] if len(users) == 1 and name not in outputs else None

    def remove(self, name: str) -> None:
        """Drop a single-input layer, its consumers reading its input instead."""
        (source,) = self.layer(name)["inbound_nodes"][0]
        for entry in self.config["layers"]:
            for node in entry["inbound_nodes"]:
                for i, inbound in enumerate(node):
                    if inbound[0] == name:
                        node[i] = list(source)
        self.config["layers"].remove(self.layer(name))

    def insert_before(self, name: str, entry: dict) -> None:
        """Put a new single-input layer between ``name`` and its input."""
        target = self.layer(name)
        entry["inbound_nodes"] = copy.deepcopy(target["inbound_nodes"])
        target["inbound_nodes"] = [[[entry["name"], 0, 0, {}]]]
        self.config["layers"].insert(self.config["layers"].index(target), entry)

    def non_negative(self, name: str) -> bool:
        kind = self.layer(name)["class_name"]
        if kind in _NON_NEGATIVE:
            return True
        return kind in _PASS_SIGN and all(self.non_negative(i) for i in self.inputs(name))


def _same_pads(n: int, stride: int, kernel: int) -> tuple[int, int]:
    """(before, after): the zeros TensorFlow's "same" padding puts around an axis of size ``n``."""
    total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
    return total // 2, total - total // 2


def _plain(cfg: dict) -> bool:
    """A conv config without groups or dilation (what the kernel rewrites handle)."""
    return cfg.get("groups", 1) == 1 and list(cfg.get("dilation_rate", [1, 1])) == [1, 1]


def _same_offsets(n: int, stride: int, kernel: int, pad_top: int, pad_bottom: int, grow: int) -> tuple | None:
    """(new kernel, rows of zeros before the old kernel) making "same" read what an explicit
    (pad_top, pad_bottom) + "valid" read along one axis of size ``n``; None if none within ``grow``."""
    out = (n + pad_top + pad_bottom - kernel) // stride + 1
    if out != -(-n // stride):
        return None
    for new in range(kernel, kernel + grow + 1):
        before = _same_pads(n, stride, new)[0] - pad_top
        if before >= 0 and new - kernel - before >= 0:
            return new, before
    return None


def _fold_pads(graph: _Graph, grow: int, log: list) -> None:
    for entry in [e for e in graph.config["layers"] if e["class_name"] == "ZeroPadding2D"]:
        name = entry["name"]
        user = graph.only_consumer(name)
        cfg = graph.layer(user)["config"] if user else None
        kind = graph.layer(user)["class_name"] if user else None
        if kind not in (*_CONVS, "MaxPooling2D") or cfg["padding"] != "valid":
            continue
        if kind == "MaxPooling2D" and not graph.non_negative(graph.inputs(name)[0]):
            log.append({"rewrite": "pad-fold", "layer": name, "applied": False,
                        "reason": "the pooled input can be negative"})
            continue
        if kind in _CONVS and not _plain(cfg):
            continue
        size = graph.shapes[name][1:3]
        kernel = cfg["kernel_size"] if kind in _CONVS else cfg["pool_size"]
        strides = cfg["strides"]
        (top, bottom), (left, right) = entry["config"]["padding"]
        axes = [_same_offsets(size[0], strides[0], kernel[0], top, bottom, grow if kind in _CONVS else 0),
                _same_offsets(size[1], strides[1], kernel[1], left, right, grow if kind in _CONVS else 0)]
        if None in axes:
            continue
        grown = [new for new, _ in axes] != list(kernel)
        cfg["padding"] = "same"
        if grown:
            cfg["kernel_size"] = [new for new, _ in axes]
            w = graph.weights[user]
            padded = np.zeros((*cfg["kernel_size"], *w[0].shape[2:]), w[0].dtype)
            (_, dh), (_, dw) = axes
            padded[dh:dh + kernel[0], dw:dw + kernel[1]] = w[0]
            graph.weights[user] = [padded, *w[1:]]
        graph.remove(name)
        log.append({"rewrite": "pad-grow" if grown else "pad-fold", "layer": name, "into": user, "applied": True,
                    **({"kernel": cfg["kernel_size"]} if grown else {})})


def _first_conv(graph: _Graph, start: str) -> tuple[str | None, list[str]]:
    """The first conv after ``start`` along single-consumer layers, and the ZeroPadding2D on the way."""
    pads, name = [], graph.only_consumer(start)
    while name and graph.layer(name)["class_name"] == "ZeroPadding2D":
        pads.append(name)
        name = graph.only_consumer(name)
    return (name if name and graph.layer(name)["class_name"] == "Conv2D" else None), pads


def _fold_normalization(graph: _Graph, log: list) -> None:
    for entry in [e for e in graph.config["layers"] if e["class_name"] == "Rescaling"]:
        name = entry["name"]
        conv, pads = _first_conv(graph, name)
        if conv is None:
            continue
        cfg = graph.layer(conv)["config"]
        if not _plain(cfg):
            continue
        channels = graph.shapes[name][-1]
        scale = np.broadcast_to(np.asarray(entry["config"]["scale"], np.float64), (channels,))
        offset = np.broadcast_to(np.asarray(entry["config"]["offset"], np.float64), (channels,))
        if np.any(scale == 0):
            continue
        # Where the conv reads padding, the zeros are normalised values (the mean colour, not black): the
        # border becomes rows/columns of the pixel value that normalises to 0, -offset / scale per channel.
        size = list(graph.shapes[name][1:3])
        border = [[0, 0], [0, 0]]
        for pad in pads:
            for axis, (before, after) in enumerate(graph.layer(pad)["config"]["padding"]):
                border[axis][0] += before
                border[axis][1] += after
        for axis in range(2):
            n = size[axis] + sum(border[axis])
            k, s = cfg["kernel_size"][axis], cfg["strides"][axis]
            if cfg["padding"] == "same":
                before, after = _same_pads(n, s, k)
                border[axis][0] += before
                border[axis][1] += after
                n += before + after
            out = (n - k) // s + 1
            border[axis][1] = max(border[axis][1] - (n - ((out - 1) * s + k)), 0)  # rows no window reads
        w = graph.weights[conv]
        kernel = w[0].astype(np.float64)
        bias = w[1].astype(np.float64) if cfg["use_bias"] else np.zeros(kernel.shape[-1])
        bias = bias + np.einsum("hwio,i->o", kernel, offset)
        kernel = kernel * scale[None, None, :, None]
        cfg.update(use_bias=True, padding="valid")
        cfg.setdefault("bias_initializer", {"class_name": "Zeros", "config": {}})
        graph.weights[conv] = [kernel.astype(w[0].dtype), bias.astype(w[0].dtype)]
        for layer in (name, *pads):
            graph.remove(layer)
        done = {"rewrite": "normalization-fold", "layer": name, "into": conv, "applied": True}
        if any(p for side in border for p in side):
            border_name = f"{conv}_border"
            graph.insert_before(conv, {"class_name": "ConstantBorder", "module": None,
                                       "registered_name": "mobilekit>ConstantBorder", "name": border_name,
                                       "config": {"name": border_name, "padding": border, "trainable": False,
                                                  "dtype": "float32", "value": (-offset / scale).tolist()}})
            done["border"] = border
            height, width = graph.shapes[name][1:3]
            graph.shapes[conv] = (None, height + sum(border[0]), width + sum(border[1]), channels)
        else:
            graph.shapes[conv] = graph.shapes[name]
        log.append(done)


def _space_to_depth_stem(graph: _Graph, log: list) -> None:
    first = graph.config["input_layers"][0][0]
    conv, _ = _first_conv(graph, first)
    if conv is None:
        rescale = graph.only_consumer(first)
        conv = _first_conv(graph, rescale)[0] if rescale else None
    if conv is None:
        return
    cfg = graph.layer(conv)["config"]
    n_h, n_w, cin = graph.shapes[conv][1:4]
    k_h, k_w = cfg["kernel_size"]
    if list(cfg["strides"]) != [2, 2] or cin > 4 or n_h % 2 or n_w % 2 or not _plain(cfg):
        return
    # Along an axis, output i reads rows 2i - top + j: block i + (j - top) // 2, row (j - top) % 2 in it.
    tops = [0, 0] if cfg["padding"] == "valid" else [_same_pads(n, 2, k)[0] for n, k in ((n_h, k_h), (n_w, k_w))]
    if any(tops):
        log.append({"rewrite": "space-to-depth-stem", "layer": conv, "applied": False,
                    "reason": "the stem pads at the top/left; its blocks would need a larger kernel"})
        return
    new_k = [-(-k_h // 2), -(-k_w // 2)]
    w = graph.weights[conv]
    kernel = np.zeros((*new_k, 4 * cin, w[0].shape[-1]), w[0].dtype)
    for j in range(k_h):
        for i in range(k_w):
            ph, pw = j % 2, i % 2
            kernel[j // 2, i // 2, (ph * 2 + pw) * cin:(ph * 2 + pw + 1) * cin] = w[0][j, i]
    name = f"{conv}_space_to_depth"
    graph.insert_before(conv, {"class_name": "SpaceToDepth", "module": None, "registered_name": "mobilekit>SpaceToDepth",
                               "name": name, "config": {"name": name, "block": 2, "trainable": False,
                                                        "dtype": "float32"}})
    cfg.update(kernel_size=new_k, strides=[1, 1])
    graph.weights[conv] = [kernel, *w[1:]]
    log.append({"rewrite": "space-to-depth-stem", "layer": conv, "applied": True, "kernel": new_k,
                "input_channels": 4 * cin})


def _plan(model, names) -> tuple[_Graph, list]:
    """The edited config and weights of ``model`` with the named rewrites, and their log (no model built)."""
    graph, log = _Graph(model), []
    if "normalization-fold" in names:
        _fold_normalization(graph, log)
    if "pad-fold" in names or "pad-grow" in names:
        _fold_pads(graph, 1 if "pad-grow" in names else 0, log)
    if "space-to-depth-stem" in names:
        _space_to_depth_stem(graph, log)
    return graph, log


def rewrite_for_qat(model, names) -> tuple[object, list]:
    """``rewrite`` for a model about to be QAT-trained: kernels must stay as QAT trains them, so only
    QAT_REWRITES apply; the others that would apply are logged as not applied, with the reason."""
    names = check_names(names)
    export, log = rewrite(model, tuple(n for n in names if n in QAT_REWRITES))
    others = tuple(n for n in names if n not in QAT_REWRITES)
    if others:
        log += [{**e, "applied": False, "reason": "QAT trains the model's own kernels; this rewrite applies to "
                                                  "post-training quantization"}
                for e in _plan(model, others)[1] if e["applied"]]
    return export, log


def rewrite(model, names=DEFAULT_REWRITES):
    """(export model, log): ``model``'s function with the named rewrites applied, and one log entry per
    rewrite applied or refused (with the reason). ``model`` itself is not changed. A rewritten model is
    checked against ``model`` (:func:`check_exact`) before it is returned.

    Example: ``export, log = rewrite(model, ("pad-fold", "space-to-depth-stem"))``.

    Raises:
        MobilekitError: an unknown name, or a rewritten model whose outputs differ from ``model``'s.
    """
    from mobilekit import layers  # noqa: F401  (registers SpaceToDepth and ConstantBorder)
    from mobilekit.backend import keras

    names = check_names(names)
    if not names:
        return model, []
    graph, log = _plan(model, names)
    if not any(entry["applied"] for entry in log):
        return model, log
    new = keras.Model.from_config(graph.config)
    for layer in new.layers:
        if layer.weights:
            layer.set_weights(graph.weights[layer.name])
    check_exact(model, new)
    return new, log


def check_exact(model, rewritten, seed: int = 0, samples: int = 2) -> float:
    """Largest |difference| of the two models' logits (the outputs with a final softmax switched off) on
    random inputs in [0, 1], relative to the largest |logit|, output by output (a detector's deltas and class logits
    each against their own scale); raises MobilekitError above 1e-4 (float rounding only)."""
    from mobilekit.backend import keras

    x = np.random.default_rng(seed).uniform(0, 1, (samples, *model.input_shape[1:])).astype(np.float32)
    outs = []
    for m in (model, rewritten):
        last = m.layers[-1]
        final = getattr(last, "activation", None)
        softmax = final is keras.activations.softmax or getattr(final, "__name__", "") == "softmax"
        try:
            if softmax:
                last.activation = keras.activations.linear  # an eager call reads it each time
            y = m(x, training=False)
            outs.append([np.asarray(o, np.float64) for o in (y if isinstance(y, (list, tuple)) else [y])])
        finally:
            if softmax:
                last.activation = final
    err = max(float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-30)) for a, b in zip(*outs))
    if not err <= 1e-4:
        raise MobilekitError(f"graph rewrite changed the model's outputs (relative error {err:.2e})")
    return err
