"""Weight clustering (tfmot), BatchNormalization folding, and keeping clusters through QAT.

Deep Compression's "trained quantization": every Conv2D/Dense kernel takes at most
``clusters`` distinct values (shared weights), pruned zeros staying zero. What the int8 file
keeps of them (docs/compression-recipes.md):

1. BatchNormalization must fold into the convs *before* clustering (:func:`fold_batch_norm`):
   folded at conversion, its per-channel scale gives each cluster one value per channel;
2. QAT must move shared values together: :class:`KeepClusters` re-ties every cluster to its
   mean after each batch, whatever tfmot's cluster-preserving scheme covered;
3. int8 weight scales: per tensor (post-training, ``convert_int8(per_tensor_weights=True)``)
   keeps at most ``clusters`` (+ zero) values per tensor; tfmot's QAT always uses per-channel
   scales, which keep them per output channel only.
"""

from __future__ import annotations

import numpy as np

from mobilekit.backend import keras, tfmot
from mobilekit.errors import MobilekitError
from mobilekit.optimize.qat import KeepSparsity

_CLUSTERED = ("Conv2D", "Dense")


def fold_batch_norm(model, arch: str, arch_kwargs: dict):
    """The same architecture built with ``batch_norm=False``, BN folded into the preceding convs.

    kernel' = kernel * gamma / sqrt(var + eps) per output channel, bias' = beta + (bias - mean) *
    gamma / sqrt(var + eps). Outputs match the BN model in inference mode.

    Raises:
        MobilekitError: the builder has no ``batch_norm`` knob, or a BN does not follow a conv.
    """
    import inspect

    from mobilekit import archs

    if "batch_norm" not in inspect.signature(archs.builder(arch)).parameters:
        raise MobilekitError(f"{arch} has no batch_norm=False variant to fold BatchNormalization into")
    plain = archs.create(arch, input_shape=model.input_shape[1:], classes=model.output_shape[-1],
                         **{**arch_kwargs, "batch_norm": False})
    by_name = {layer.name: layer for layer in model.layers}
    for layer in plain.layers:
        if not layer.weights:
            continue
        source = by_name.get(layer.name)
        if source is None:
            raise MobilekitError(f"fold_batch_norm: {layer.name!r} has no counterpart in {model.name!r}")
        bn = by_name.get(f"{layer.name}_bn")
        if bn is None:
            layer.set_weights(source.get_weights())
            continue
        gamma, beta, mean, var = bn.get_weights()
        scale = gamma / np.sqrt(var + bn.epsilon)
        weights = source.get_weights()
        kernel = weights[0] * scale  # output channels are the kernel's last axis (Conv2D, groups too)
        bias = weights[1] if len(weights) > 1 else np.zeros_like(beta)
        layer.set_weights([kernel, beta + (bias - mean) * scale])
    missing = [bn.name for bn in model.layers if type(bn).__name__ == "BatchNormalization"
               and bn.name.removesuffix("_bn") not in {layer.name for layer in plain.layers}]
    if missing:
        raise MobilekitError(f"fold_batch_norm: no conv before {missing[0]!r}")
    return plain


def cluster(model, clusters: int, preserve_sparsity: bool = True):
    """Wrap every Conv2D/Dense of ``model`` for tfmot clustering (k-means++ initial centroids)."""
    if isinstance(clusters, bool) or not isinstance(clusters, int) or not 2 <= clusters <= 256:
        raise MobilekitError(f"clusters must be an int in [2, 256]; received clusters={clusters!r}")
    c = tfmot.clustering.keras

    def wrap(layer):
        if type(layer).__name__ in _CLUSTERED:
            return c.cluster_weights(layer, number_of_clusters=clusters, preserve_sparsity=preserve_sparsity,
                                     cluster_centroids_init=c.CentroidInitialization.KMEANS_PLUS_PLUS)
        return layer

    return keras.models.clone_model(model, clone_function=wrap)


def strip_clustering(model):
    return tfmot.clustering.keras.strip_clustering(model)


def cluster_labels(model) -> dict[str, np.ndarray]:
    """{layer name: cluster label per kernel weight} for every Conv2D/Dense; -1 marks the zeros.

    The number of values a kernel holds is ``labels.max() + 1`` plus one if any label is -1.
    """
    labels = {}
    for layer in model.layers:
        if type(layer).__name__ in _CLUSTERED:
            kernel = layer.kernel.numpy()
            values, inverse = np.unique(kernel, return_inverse=True)
            inverse = inverse.reshape(kernel.shape)
            if (values == 0).any():
                zero = int(np.flatnonzero(values == 0)[0])
                inverse = np.where(inverse == zero, -1, inverse - (inverse > zero))
            labels[layer.name] = inverse.astype(np.int32)
    return labels


def one_shot(model, sparsity: float, clusters: int | None, seed: int = 0):
    """Prune by magnitude and cluster (k-means, Lloyd) every Conv2D/Dense kernel without training.

    For sizes only (``mobilekit build --size-only``): what a recipe's structure costs in bytes.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ not in _CLUSTERED:
            continue
        weights = layer.get_weights()
        k = weights[0]
        if sparsity > 0:
            threshold = np.quantile(np.abs(k), sparsity)
            k = np.where(np.abs(k) <= threshold, 0.0, k).astype(k.dtype)
        if clusters:
            nonzero = k[k != 0]
            centroids = np.quantile(nonzero, np.linspace(0, 1, clusters)) + rng.normal(0, 1e-9, clusters)
            for _ in range(20):
                assign = np.argmin(np.abs(nonzero[:, None] - centroids[None, :]), axis=1)
                for j in range(clusters):
                    if (assign == j).any():
                        centroids[j] = nonzero[assign == j].mean()
            k = k.copy()
            k[k != 0] = centroids[assign].astype(k.dtype)
        layer.set_weights([k, *weights[1:]])
    return model


class KeepClusters(KeepSparsity):
    """Re-ties each kernel's clusters to their mean after every training batch (zero stays zero).

    tfmot's cluster-preserving QAT leaves some layers (those a pattern transform rewrites,
    e.g. convs feeding Concatenate) with plain QAT, whose updates pull shared weights apart.
    """

    def __init__(self, labels: dict[str, np.ndarray]):
        super().__init__(labels)  # the labels stand in for masks: same shapes, same kernel lookup
        self._ties = None

    def apply(self):
        if self._ties is None:
            self._ties = []
            for kernel, labels, _ in self._collect():
                flat = labels.astype(np.int64).ravel()
                shared = flat >= 0
                self._ties.append((kernel, flat[shared], shared, np.bincount(flat[shared])))
        for kernel, flat, shared, counts in self._ties:
            w = kernel.numpy().ravel()
            means = np.bincount(flat, weights=w[shared], minlength=len(counts)) / np.maximum(counts, 1)
            tied = np.zeros_like(w)
            tied[shared] = means[flat]
            kernel.assign(tied.reshape(kernel.shape))
