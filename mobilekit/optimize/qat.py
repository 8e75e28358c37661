"""Quantization-aware training (tfmot default 8-bit scheme), keeping pruned zeros."""

from __future__ import annotations

import numpy as np

from mobilekit.backend import keras, tfmot
from mobilekit.layers import PASS_THROUGH_LAYERS


class PassThroughQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """For weightless layers that only move values (ChannelSplit): nothing to fake-quantize.

    Their inputs are already quantized, and the int8 converter gives such ops
    (SPLIT) the input's scale, as it does for RESHAPE and TRANSPOSE.
    """

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def rescaling_as_depthwise(model):
    """``model`` with each per-channel ``Rescaling`` (``x * scale + offset``: a pretrained model's input
    normalisation) as the same arithmetic in a frozen 1x1 DepthwiseConv2D with bias, which tfmot's 8-bit scheme
    quantizes and the converter keeps in int8 (a Rescaling under QAT converts with a float island). Other layers
    are shared, not copied."""
    swapped = {}

    def clone(layer):
        if isinstance(layer, keras.layers.Rescaling):
            swapped[layer.name] = layer
            return keras.layers.DepthwiseConv2D(1, use_bias=True, trainable=False, name=layer.name)
        return layer

    new = keras.models.clone_model(model, clone_function=clone)
    for name, old in swapped.items():
        channels = int(old.input_shape[-1])
        scale = np.broadcast_to(np.asarray(old.scale, np.float32), (channels,))
        offset = np.broadcast_to(np.asarray(old.offset, np.float32), (channels,))
        new.get_layer(name).set_weights([scale.reshape(1, 1, channels, 1), offset.copy()])
    return new


def _annotate(layer):
    if isinstance(layer, PASS_THROUGH_LAYERS):
        return tfmot.quantization.keras.quantize_annotate_layer(
            layer, quantize_config=PassThroughQuantizeConfig())
    return layer


def quantize_aware(model, *, preserve_sparsity: bool = True, preserve_clusters: bool = False):
    """Wrap ``model`` for 8-bit QAT with tfmot's collaborative schemes.

    ``preserve_sparsity`` alone: PQAT; ``preserve_clusters``: CQAT, or PCQAT with both.

    Example: ``qat = quantize_aware(strip_pruning(pruned))``.
    """
    qkeras = tfmot.quantization.keras
    if any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers):
        model = rescaling_as_depthwise(model)
    if any(isinstance(layer, PASS_THROUGH_LAYERS) for layer in model.layers):
        model = keras.models.clone_model(model, clone_function=_annotate)  # shares the layers
    annotated = qkeras.quantize_annotate_model(model)
    combine = tfmot.experimental.combine
    scheme = (combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=preserve_sparsity)
              if preserve_clusters else combine.Default8BitPrunePreserveQuantizeScheme()
              if preserve_sparsity else None)
    custom = {cls.__name__: cls for cls in PASS_THROUGH_LAYERS}
    with qkeras.quantize_scope({**custom, "PassThroughQuantizeConfig": PassThroughQuantizeConfig}):
        return qkeras.quantize_apply(annotated, scheme) if scheme else qkeras.quantize_apply(annotated)


def _inner(layer):
    return getattr(layer, "layer", layer)


# tfmot's activation quantizers start at [-6, 6] and move by an exponential average with decay 0.999 per training
# step: after QAT's 50-100 steps a range is still ~90-95% its starting value whatever the layer outputs. A linear
# output wider than 6 (EfficientNet-Lite0's projections and residual sums) is clipped, a ReLU output in [0, 6] wastes
# half its 256 levels on negatives.
RANGE_NAMES = ("output", "post_activation")


def calibrate_ranges(qat_model, float_model, images, batch_size: int = 32) -> int:
    """Start every activation quantizer of ``qat_model`` at the range its layer's output takes in ``float_model`` (the
    same layers before QAT) on ``images``, min-max as post-training calibration does, instead of tfmot's [-6, 6];
    returns the ranges set. The input's quantizer gets the images' own range."""
    from mobilekit.backend import tf

    pairs: dict[str, list] = {}  # float layer name ("" for the input) -> [(min variable, max variable)]
    float_names = {layer.name for layer in float_model.layers}
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", None)
        source = "" if inner is None else inner.name
        if source and source not in float_names:
            continue
        found = {}
        for w in layer.non_trainable_weights:
            short = w.name.split("/")[-1].split(":")[0]
            # The input's QuantizeLayer names its range after itself (quantize_layer_1_min in a process's second
            # QAT model); a wrapper names it after what it quantizes.
            prefixes = (layer.name,) if inner is None else RANGE_NAMES
            for prefix in prefixes:
                if short in (f"{prefix}_min", f"{prefix}_max"):
                    found[short.rsplit("_", 1)[1]] = w
        if set(found) == {"min", "max"}:
            pairs.setdefault(source, []).append((found["min"], found["max"]))
    names = [n for n in pairs if n]
    # A copy with layers of its own: the float model's layers may belong to several graphs (pruning wraps them in
    # place), and a layer's ``output`` is then its first graph's.
    twin = keras.models.clone_model(float_model)
    twin.set_weights(float_model.get_weights())
    probe = keras.Model(twin.inputs, [twin.get_layer(n).output for n in names])
    low = {n: np.inf for n in pairs}
    high = {n: -np.inf for n in pairs}
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        outputs = probe(chunk, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for n, value in [("", tf.constant(chunk)), *zip(names, outputs)]:
            if n in pairs:
                low[n] = min(low[n], float(tf.reduce_min(value)))
                high[n] = max(high[n], float(tf.reduce_max(value)))
    for n, variables in pairs.items():
        lo, hi = min(low[n], 0.0), max(high[n], 0.0)  # the range holds 0, as the converter's ranges do
        if hi - lo < 1e-6:
            hi = lo + 1e-6
        for min_var, max_var in variables:
            min_var.assign(tf.fill(min_var.shape, lo))
            max_var.assign(tf.fill(max_var.shape, hi))
    return sum(len(v) for v in pairs.values())


def _traced_masking(pairs):
    """One traced function that multiplies every kernel by its 0/1 mask: a single call a step, where eager assigns
    cost a dispatch per layer (per replica too, on data-parallel workers). Multiplying by 0 or 1 is exact, traced or
    not."""
    from mobilekit.backend import tf

    masks = [(kernel, tf.constant(mask)) for kernel, mask in pairs]

    @tf.function
    def reapply():
        for kernel, mask in masks:
            kernel.assign(kernel * mask)

    return reapply


class KeepSparsity(keras.callbacks.Callback):
    """Re-applies pruning masks to the kernels after every training batch.

    tfmot's prune-preserving QAT scheme does not cover every layer: a conv whose
    quantize config was rewritten by a pattern transform (SqueezeNet's expand
    convs feeding Concatenate) gets plain QAT, and its zeros fill back in. The
    masks recorded from the stripped pruned model are re-imposed here, which
    keeps the exact zero pattern for every pruned layer whatever the scheme did.
    """

    def __init__(self, masks: dict[str, np.ndarray]):
        super().__init__()
        self.masks = masks
        self._pairs = None

    def _collect(self):
        pairs = []
        for layer in self.model.layers:
            inner = _inner(layer)
            mask = self.masks.get(inner.name)
            if mask is not None:
                # The QuantizeWrapper swaps ``inner.kernel`` for its fake-quantized
                # tensor; the variable itself is among the wrapper's weights.
                kernels = [w for w in layer.trainable_weights
                           if w.name.split("/")[-1].startswith("kernel") and tuple(w.shape) == mask.shape]
                if len(kernels) != 1:
                    raise RuntimeError(f"KeepSparsity: no unique kernel variable in {inner.name!r}")
                pairs.append((kernels[0], mask.astype(np.float32), inner.name))
        if len(pairs) != len(self.masks):
            found = {_inner(layer).name for layer in self.model.layers}
            missing = sorted(set(self.masks) - found)
            raise RuntimeError(f"KeepSparsity: masked layers not found in the model: {missing}")
        return pairs

    def apply(self):
        if self._pairs is None:
            self._pairs = self._collect()
            self._reapply = _traced_masking([(kernel, mask) for kernel, mask, _ in self._pairs])
        self._reapply()

    def on_train_batch_end(self, batch, logs=None):
        self.apply()


def float_twin(qat_model, float_model):
    """``float_model``'s architecture with the weights QAT trained (fake-quant nodes gone), or None when
    the QAT wrappers do not keep them as plain variables (cluster-preserving QAT keeps centroids).

    The int8 file is converted from ``qat_model``; this twin is the float model with the same weights: the
    reference `mobilekit numerics` compares the int8 file against.
    """
    trained = {}
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", layer)
        for w in layer.weights:
            if "cluster" in w.name or "centroid" in w.name:
                return None  # the kernel is gathered from centroids: no plain variable holds it
            trained[(inner.name, w.name.split("/")[-1])] = w
    twin = keras.models.clone_model(float_model)
    for layer in twin.layers:
        values = []
        for w in layer.weights:
            source = trained.get((layer.name, w.name.split("/")[-1]))
            if source is None or tuple(source.shape) != tuple(w.shape):
                return None
            values.append(source.numpy())
        if values:
            layer.set_weights(values)
    return twin
