"""EfficientNet-Lite.

Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", 2019
(arXiv:1905.11946), and the Lite variants made for mobile accelerators and int8 (TensorFlow's
``efficientnet_lite_builder``, 2020): MobileNetV2-style inverted residuals with 3x3 and 5x5
depthwise convs, ReLU6 instead of swish, no squeeze-and-excitation, and a stem and head that do
not scale with the width (``fix_head_stem``: the first and last stages keep their repeats too).
TensorFlow Lite Model Maker uses EfficientNet-Lite0 as its default image-classification backbone.

Drop-connect (stochastic depth) is a training-time regulariser of the original; it is left out (no
effect on inference, and the short fine-tunes here are not long enough to need it).
"""

from __future__ import annotations

import math

from mobilekit.backend import keras
from mobilekit.archs.registry import register
from mobilekit.archs._common import (check_common, checkpoint_layout_input, classifier_top, conv_bn, inverted_residual,
                                     make_divisible)
from mobilekit.errors import MobilekitError

# The B0 body: (depthwise kernel, first stride, expansion, output channels, repeats).
_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
           (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM, HEAD = 32, 1280
# (width, depth, input size) of Lite0..Lite4 in efficientnet_lite_builder.py.
LITE_VARIANTS = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260), 3: (1.2, 1.4, 280), 4: (1.4, 1.8, 300)}


def _coefficient(arch: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 4:
        raise MobilekitError(f"{arch}: {name} must be in (0, 4]; received {name}={value!r}")
    return float(value)


def stage_table(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """The scaled stages: channels rounded to multiples of 8, repeats rounded up, the first and last
    stages' repeats fixed (Lite)."""
    out = []
    for i, (kernel, stride, expansion, channels, repeats) in enumerate(_STAGES):
        fixed = i in (0, len(_STAGES) - 1)
        out.append((kernel, stride, expansion, make_divisible(channels * width),
                    repeats if fixed else int(math.ceil(depth * repeats))))
    return out


@register
def efficientnet_lite0(*, input_shape=(224, 224, 3), classes=1000, include_top=True, pooling=None,
                       classifier_activation="softmax", dropout=0.2, width_coefficient=1.0, depth_coefficient=1.0,
                       padding="same", bn_epsilon=1e-3, normalization=None, batch_size=None):
    """EfficientNet-Lite0 (and, through the coefficients, Lite1-4's bodies).

    Example: ``efficientnet_lite0(input_shape=(128, 128, 3), classes=5)``; Lite2's body is
    ``efficientnet_lite0(width_coefficient=1.1, depth_coefficient=1.2, input_shape=(260, 260, 3))``.

    Args:
        input_shape, classes, include_top, pooling, classifier_activation, dropout:
            as in Keras Applications (dropout 0.2 before the classifier, as the paper's B0).
        width_coefficient: channel multiplier of the body (stem and head stay 32 and 1280).
        depth_coefficient: repeat multiplier of the middle stages (rounded up).
        padding: "same" (TF: stride-2 convs pad bottom/right) or "symmetric" (PyTorch: kernel // 2
            zeros on every side).
        bn_epsilon: BatchNormalization epsilon (TF's EfficientNet: 1e-3).
        normalization: None, or per-channel ``(mean, std)`` applied in the model, so the input stays
            ``pixel / 255``.
        batch_size: fixed batch size of the input (None for any).

    Raises:
        MobilekitError: an invalid argument, named with its value.
    """
    arch = "efficientnet_lite0"
    input_shape = check_common(arch, input_shape, classes, include_top, pooling, classifier_activation, dropout)
    width = _coefficient(arch, "width_coefficient", width_coefficient)
    depth = _coefficient(arch, "depth_coefficient", depth_coefficient)
    inputs, x, style = checkpoint_layout_input(arch, input_shape, padding, bn_epsilon, normalization, batch_size)
    x = conv_bn(x, STEM, 3, "conv1", strides=2, **style)
    block = 0
    for kernel, stride, expansion, channels, repeats in stage_table(width, depth):
        for r in range(repeats):
            x = inverted_residual(x, expansion, channels, stride if r == 0 else 1, block, style, kernel)
            block += 1
    x = conv_bn(x, HEAD, 1, "conv_last", **style)
    x = classifier_top(x, classes, include_top, pooling, classifier_activation, dropout)
    return keras.Model(inputs, x, name=f"efficientnet_lite0_{width:g}_{depth:g}_{input_shape[0]}")
