"""Weight clustering (tfmot), BatchNormalization folding, and keeping clusters through QAT.

Deep Compression's "trained quantization": every Conv2D/Dense kernel takes at most
``clusters`` distinct values (shared weights), pruned zeros staying zero. For the values
to survive into the int8 file as at most ``clusters`` (+ zero) distinct int8 values per
tensor, three things must hold, and the pipeline makes them hold:

1. no per-output-channel rescaling after clustering: BatchNormalization folds into the
   convs *before* clustering (:func:`fold_batch_norm`), not at conversion;
2. per-tensor weight scales at conversion (``convert_int8(per_tensor_weights=True)``),
   because per-channel scales map one centroid to a different int8 value per channel;
3. QAT that moves shared values together: :class:`KeepClusters` re-ties every cluster to
   its mean after each batch, whatever tfmot's cluster-preserving scheme covered.
"""

from __future__ import annotations

import numpy as np

from mobilekit._tf import keras, tfmot
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

    clone = keras.models.clone_model(model, clone_function=wrap)
    return clone


def strip_clustering(model):
    return tfmot.clustering.keras.strip_clustering(model)


def cluster_labels(model) -> dict[str, np.ndarray]:
    """{layer name: label per kernel weight} for every Conv2D/Dense (label 0 = the zero value if any)."""
    labels = {}
    for layer in model.layers:
        if type(layer).__name__ in _CLUSTERED:
            kernel = layer.kernel.numpy()
            values, inverse = np.unique(kernel, return_inverse=True)
            if 0.0 in values:  # put zero first so it can be pinned
                zero = int(np.searchsorted(values, 0.0))
                inverse = np.where(inverse == zero, 0, inverse + (inverse < zero))
            labels[layer.name] = inverse.reshape(kernel.shape).astype(np.int32)
            labels[layer.name + ":has_zero"] = np.array(0.0 in values)
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
        super().__init__({k: v for k, v in labels.items() if not k.endswith(":has_zero")})
        self.has_zero = {k.removesuffix(":has_zero"): bool(v) for k, v in labels.items() if k.endswith(":has_zero")}
        self._ties = None

    def apply(self):
        if self._ties is None:
            self._ties = []
            for kernel, labels, name in self._collect():
                flat = labels.astype(np.int64).ravel()
                self._ties.append((kernel, flat, np.bincount(flat), self.has_zero[name]))
        for kernel, flat, counts, has_zero in self._ties:
            w = kernel.numpy().ravel()
            means = np.bincount(flat, weights=w, minlength=len(counts)) / np.maximum(counts, 1)
            if has_zero:
                means[0] = 0.0
            kernel.assign(means[flat].reshape(kernel.shape).astype(w.dtype))
