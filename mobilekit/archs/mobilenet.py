"""MobileNet v1 and v2.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", 2017 (arXiv:1704.04861): depthwise-separable convs, width
multiplier ``alpha`` and ``depth_multiplier``. Sandler et al., "MobileNetV2:
Inverted Residuals and Linear Bottlenecks", 2018 (arXiv:1801.04381).

Layers follow Keras Applications (same weight shapes and parameter counts);
ReLU6 is a ``ReLU(6.)`` layer right after each BatchNormalization so QAT folds
and fuses them, and the classifier is GlobalAveragePooling + Dense, which
converts to one FULLY_CONNECTED op with no Reshape.
"""

from __future__ import annotations

from mobilekit.backend import keras
from mobilekit.archs.registry import register
from mobilekit.archs._common import (TORCH_IMAGENET_NORMALIZATION, check_common, check_min_size,  # noqa: F401
                                     checkpoint_layout_input, classifier_top, conv_bn, depthwise_bn,
                                     inverted_residual, make_divisible, model_input)
from mobilekit.errors import MobilekitError

# MobileNet v1 body: (pointwise filters at alpha 1, depthwise stride).
_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
              (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# MobileNet v2 body: (expansion t, output channels c, repeats n, first stride s), Table 2.
_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _check_alpha(arch: str, alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 4:
        raise MobilekitError(f"{arch}: alpha must be in (0, 4]; received alpha={alpha!r}")
    return float(alpha)


@register
def mobilenet_v1(*, input_shape=(224, 224, 3), classes=1000, include_top=True, pooling=None,
                 classifier_activation="softmax", dropout=1e-3, alpha=1.0, depth_multiplier=1,
                 batch_size=None):
    """MobileNet v1: a 3x3/2 conv, then 13 depthwise-separable blocks.

    Example: ``mobilenet_v1(alpha=0.5, input_shape=(160, 160, 3))``.

    Args:
        input_shape, classes, include_top, pooling, classifier_activation, dropout:
            as in Keras Applications.
        alpha: width multiplier (the paper's 1.0, 0.75, 0.5, 0.25).
        depth_multiplier: depthwise channel multiplier (the paper's resolution knob is
            ``input_shape``).
        batch_size: fixed batch size of the input (None for any).

    Raises:
        MobilekitError: an invalid argument, named with its value.
    """
    arch = "mobilenet_v1"
    input_shape = check_common(arch, input_shape, classes, include_top, pooling,
                               classifier_activation, dropout)
    alpha = _check_alpha(arch, alpha)
    if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, int) or depth_multiplier < 1:
        raise MobilekitError(f"{arch}: depth_multiplier must be a positive int; "
                             f"received depth_multiplier={depth_multiplier!r}")
    check_min_size(arch, input_shape)
    inputs = model_input(input_shape, batch_size)
    x = conv_bn(inputs, int(32 * alpha), 3, "conv1", strides=2)
    for i, (filters, stride) in enumerate(_V1_BLOCKS, start=1):
        x = depthwise_bn(x, stride, f"conv_dw_{i}", depth_multiplier)
        x = conv_bn(x, int(filters * alpha), 1, f"conv_pw_{i}")
    x = classifier_top(x, classes, include_top, pooling, classifier_activation, dropout)
    return keras.Model(inputs, x, name=f"mobilenet_v1_{alpha:g}_{input_shape[0]}")


@register
def mobilenet_v2(*, input_shape=(224, 224, 3), classes=1000, include_top=True, pooling=None,
                 classifier_activation="softmax", dropout=0.0, alpha=1.0, padding="same",
                 bn_epsilon=1e-3, normalization=None, batch_size=None):
    """MobileNet v2: inverted residuals with linear bottlenecks (Table 2 of the paper).

    Example: ``mobilenet_v2(alpha=0.35, input_shape=(96, 96, 3), classes=10)``; the
    torchvision layout for its ImageNet weights is ``mobilenet_v2(padding="symmetric",
    bn_epsilon=1e-5, normalization=TORCH_IMAGENET_NORMALIZATION)``.

    Args:
        input_shape, classes, include_top, pooling, classifier_activation, dropout:
            as in Keras Applications.
        alpha: width multiplier; channels rounded to multiples of 8, the last conv
            stays 1280 wide for alpha <= 1.
        padding: "same" (TF: stride-2 convs pad bottom/right) or "symmetric"
            (PyTorch: one zero on every side, an explicit ZeroPadding2D).
        bn_epsilon: BatchNormalization epsilon (Keras 1e-3, PyTorch 1e-5).
        normalization: None, or per-channel ``(mean, std)`` applied in the model as
            ``(x - mean) / std`` (one int8 MUL + ADD after conversion), so the
            input stays ``pixel / 255``.
        batch_size: fixed batch size of the input (None for any).

    Raises:
        MobilekitError: an invalid argument, named with its value.
    """
    arch = "mobilenet_v2"
    input_shape = check_common(arch, input_shape, classes, include_top, pooling,
                               classifier_activation, dropout)
    alpha = _check_alpha(arch, alpha)
    inputs, x, style = checkpoint_layout_input(arch, input_shape, padding, bn_epsilon, normalization, batch_size)
    x = conv_bn(x, make_divisible(32 * alpha), 3, "conv1", strides=2, **style)
    block = 0
    for expansion, channels, repeats, stride in _V2_STAGES:
        for r in range(repeats):
            x = inverted_residual(x, expansion, make_divisible(channels * alpha),
                                   stride if r == 0 else 1, block, style)
            block += 1
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = conv_bn(x, last, 1, "conv_last", **style)
    x = classifier_top(x, classes, include_top, pooling, classifier_activation, dropout)
    return keras.Model(inputs, x, name=f"mobilenet_v2_{alpha:g}_{input_shape[0]}")
