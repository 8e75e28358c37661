"""Compression: pruning (magnitude, m-by-n), clustering, QAT (tfmot) and their keepers."""

from mobilekit.optimize.cluster import (KeepClusters, cluster, cluster_labels, fold_batch_norm, one_shot,
                                        strip_clustering)
from mobilekit.optimize.prune import prune, strip_pruning, sparsity_masks, validate_sparsity
from mobilekit.optimize.qat import KeepSparsity, calibrate_ranges, float_twin, quantize_aware

__all__ = ["prune", "strip_pruning", "sparsity_masks", "validate_sparsity", "quantize_aware", "float_twin",
           "KeepSparsity", "KeepClusters", "cluster", "cluster_labels", "fold_batch_norm", "one_shot",
           "strip_clustering"]
