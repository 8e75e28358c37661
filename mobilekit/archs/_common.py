"""Layer helpers and argument checks shared by the architecture families.

Only QAT-compatible layers are used: ReLU as a layer right after its conv (or
its BatchNormalization), no Lambda, no fused ``activation=`` on convs.
"""

from __future__ import annotations

import numpy as np

from mobilekit.backend import keras
from mobilekit.errors import MobilekitError

CLASSIFIER_ACTIVATIONS = (None, "softmax")
POOLINGS = (None, "avg", "max")
# Moving-statistics momentum of BatchNormalization. Keras' 0.99 lags far behind
# the weights in the few hundred steps a phone-model build trains for (test
# accuracy near chance while training accuracy was 60%, measured); 0.9 tracks them.
BN_MOMENTUM = 0.9


def check_common(arch: str, input_shape, classes, include_top, pooling,
                 classifier_activation, dropout) -> tuple[int, int, int]:
    """Validate the Keras-Applications-style arguments; returns the input shape."""
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
            or not all(isinstance(d, int) and d > 0 for d in input_shape)):
        raise MobilekitError(f"{arch}: input_shape must be (height, width, channels) "
                             f"of positive ints; received input_shape={input_shape!r}")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise MobilekitError(f"{arch}: classes must be a positive int; received classes={classes!r}")
    if not isinstance(include_top, bool):
        raise MobilekitError(f"{arch}: include_top must be a bool; received include_top={include_top!r}")
    check_choice(arch, "pooling", pooling, POOLINGS)
    check_choice(arch, "classifier_activation", classifier_activation, CLASSIFIER_ACTIVATIONS)
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise MobilekitError(f"{arch}: dropout must be in [0, 1); received dropout={dropout!r}")
    return tuple(input_shape)


def check_choice(arch: str, name: str, value, choices):
    """``value`` if it is one of ``choices`` (True/False never pass for 1/0); else an error naming it."""
    choices = tuple(choices)
    if isinstance(value, bool) or value not in choices:
        raise MobilekitError(f"{arch}: {name} must be one of {choices}; received {name}={value!r}")
    return value


def model_input(input_shape, batch_size=None):
    return keras.layers.Input(shape=input_shape, batch_size=batch_size, name="input")


def add_batch_norm(x, name: str, epsilon: float = 1e-3):
    """BatchNormalization named ``name_bn``, right after its conv (so QAT folds it)."""
    # fused=False: on CPU the fused kernel made training steps 1.3x slower (measured).
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=epsilon, fused=False,
                                           name=f"{name}_bn")(x)


def conv_relu(x, filters: int, kernel: int, name: str, *, strides: int = 1,
              padding: str = "same", batch_norm: bool = False, groups: int = 1):
    """Conv2D [+ BatchNormalization] + ReLU, named ``name``, ``name_bn``, ``name_relu``."""
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, groups=groups,
                            use_bias=not batch_norm, name=name)(x)
    if batch_norm:
        x = add_batch_norm(x, name)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def check_min_size(arch: str, input_shape, minimum: int = 32):
    """Reject inputs too small for five stride-2 stages, naming the shape."""
    if min(input_shape[:2]) < minimum:
        raise MobilekitError(f"{arch}: input_shape={tuple(input_shape)!r} is too small; height and "
                             f"width must be at least {minimum} (five stride-2 stages)")


def classifier_top(x, classes, include_top, pooling, classifier_activation, dropout):
    """Global average pool + dropout + Dense head (one FULLY_CONNECTED, no Reshape)."""
    if not include_top:
        return pool_features(x, pooling)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(classes, name="logits")(x)
    if classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation, name="predictions")(x)
    return x


def pool_features(x, pooling):
    """The ``include_top=False`` pooling choice of Keras Applications."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


# --- Conv/BN/ReLU6 helpers of the inverted-residual families (MobileNet, EfficientNet-Lite) ---

def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never below 90% of ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


PADDINGS = ("same", "symmetric")
# torchvision's ImageNet input normalization (inputs in [0, 1]).
TORCH_IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def bn_relu6(x, name: str, relu: bool = True, bn_epsilon: float = 1e-3):
    x = add_batch_norm(x, name, bn_epsilon)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def pad_for(x, kernel: int, strides: int, padding: str, name: str) -> tuple:
    """("same" conv padding) or, for ``padding="symmetric"`` stride-2 convs, PyTorch's
    ``kernel // 2`` zeros on every side as a ZeroPadding2D before a "valid" conv."""
    if padding == "symmetric" and strides > 1 and kernel > 1:
        return keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x), "valid"
    return x, "same"


def conv_bn(x, filters: int, kernel: int, name: str, strides: int = 1, relu: bool = True,
             padding: str = "same", bn_epsilon: float = 1e-3):
    x, pad = pad_for(x, kernel, strides, padding, name)
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=pad, use_bias=False,
                            name=name)(x)
    return bn_relu6(x, name, relu, bn_epsilon)


def depthwise_bn(x, strides: int, name: str, depth_multiplier: int = 1, padding: str = "same",
                 bn_epsilon: float = 1e-3, kernel: int = 3):
    x, pad = pad_for(x, kernel, strides, padding, name)
    x = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding=pad, use_bias=False,
                                     depth_multiplier=depth_multiplier, name=name)(x)
    return bn_relu6(x, name, bn_epsilon=bn_epsilon)


def checkpoint_layout_input(arch: str, input_shape, padding, bn_epsilon, normalization, batch_size):
    """The input of an inverted-residual net whose layout follows a checkpoint's (MobileNetV2, EfficientNet-Lite):
    ``padding`` and ``bn_epsilon`` checked, the input normalised in the model; (inputs, x, style for the blocks)."""
    check_choice(arch, "padding", padding, PADDINGS)
    if isinstance(bn_epsilon, bool) or not isinstance(bn_epsilon, (int, float)) or not 0 < bn_epsilon < 1:
        raise MobilekitError(f"{arch}: bn_epsilon must be in (0, 1); received bn_epsilon={bn_epsilon!r}")
    check_min_size(arch, input_shape)
    inputs = model_input(input_shape, batch_size)
    x = normalize_input(inputs, normalization, input_shape[-1], arch)
    return inputs, x, {"padding": padding, "bn_epsilon": float(bn_epsilon)}


def inverted_residual(x, expansion: int, filters: int, stride: int, block: int, style: dict, kernel: int = 3):
    """MobileNetV2's inverted residual with a linear bottleneck (EfficientNet-Lite's MBConv without SE): 1x1
    expansion (none when ``expansion`` is 1), ``kernel`` x ``kernel`` depthwise, 1x1 projection, and the
    identity added when the shapes allow; layers named ``block_{block}_expand/_depthwise/_project/_add``."""
    name = f"block_{block}"
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = conv_bn(y, in_channels * expansion, 1, f"{name}_expand", **style)
    y = depthwise_bn(y, stride, f"{name}_depthwise", kernel=kernel, **style)
    y = conv_bn(y, filters, 1, f"{name}_project", relu=False, **style)
    if stride == 1 and in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def normalize_input(x, normalization, channels: int, arch: str):
    if normalization is None:
        return x
    try:
        mean, std = (np.asarray(v, np.float64).reshape(-1) for v in normalization)
    except (TypeError, ValueError):
        mean = std = None
    if mean is None or mean.shape != (channels,) or std.shape != (channels,) or not np.all(std > 0):
        raise MobilekitError(f"{arch}: normalization must be (mean, std) with {channels} values each "
                             f"and std > 0; received normalization={normalization!r}")
    return keras.layers.Rescaling(scale=(1 / std).tolist(), offset=(-mean / std).tolist(),
                                  name="normalize")(x)
