"""`mobilekit build --size-only`: what a recipe's structure costs in bytes, without data or training.

The arch is built untrained (e.g. SqueezeNet 1.0 in its 1,000-class ImageNet configuration),
each Conv2D/Dense kernel is pruned by magnitude to the recipe's sparsity and clustered by
k-means to its clusters in one shot (mobilekit.optimize.one_shot), then converted to full-int8
with random calibration, exactly as the recipe's files are stored. Values are untrained, so
only the sizes mean anything: the entropy of the stored weights is set by how many are zero
and how many distinct values the rest take, not by which values they are.
"""

from __future__ import annotations

import gzip
import lzma

from mobilekit.errors import MobilekitError
from mobilekit.settings import size_hw


def size_only(arch: str, spec, input_size=224, classes: int = 1000, arch_kwargs: dict | None = None,
              seed: int = 0) -> dict:
    """Sizes of ``arch`` at ``input_size`` (a side or a (height, width) pair) compressed by the recipe ``spec`` (a
    mobilekit.recipes.Recipe)."""
    from mobilekit import archs
    from mobilekit.backend import keras
    from mobilekit.convert import convert_int8
    from mobilekit.convert import random_calibration
    from mobilekit.optimize import one_shot
    from mobilekit.tflite_file import TfliteFile

    if spec.m_by_n:
        raise MobilekitError(f"--size-only does not apply m-by-n pruning ({spec.name}); it needs training")
    keras.utils.set_random_seed(seed)
    shape = (*size_hw(input_size), 3)
    model = archs.create(arch, input_shape=shape, classes=classes, **(arch_kwargs or {}))
    one_shot(model, spec.sparsity, spec.clusters, seed=seed)
    calibration = random_calibration(shape, seed=seed)
    content = convert_int8(model, calibration, per_tensor_weights=spec.per_tensor_weights)
    f = TfliteFile(content)
    params = f.weight_params()
    gz = len(gzip.compress(content, 9, mtime=0))
    xz = len(lzma.compress(content, preset=9 | lzma.PRESET_EXTREME))
    layers = f.weight_sparsity()
    return {"arch": arch, "recipe": spec.to_json(), "input_shape": list(shape), "classes": classes,
            "weights": "untrained (sizes only)", "weight_params": params,
            "sizes": {"int8_tflite_bytes": len(content), "int8_gzip_bytes": gz, "int8_xz_bytes": xz,
                      "bits_per_param": 8 * gz / params, "bits_per_param_xz": 8 * xz / params},
            "sparsity": sum(v["zeros"] for v in layers.values()) / sum(v["params"] for v in layers.values()),
            "max_distinct_per_tensor": max(v["distinct_values"] for v in layers.values()),
            "max_distinct_per_channel": max(v["max_distinct_per_channel"] for v in layers.values()),
            "per_layer": layers}
