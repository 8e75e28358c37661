"""SqueezeNet 1.0 and 1.1.

Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters
and <0.5MB model size", 2016 (arXiv:1602.07360), and the 1.1 variant of the
forresti/SqueezeNet repository (3x3 conv1 with 64 filters, earlier pooling:
2.4x less computation, same accuracy). Max-pools use the reference models'
ceil mode, so feature-map sizes and MACs match the Caffe/torchvision models.

The fire-module widths follow the paper's metaparameters (Section 5): fire
module ``i`` (0-based, fire2..fire9) has ``e_i = base_e + incr_e * (i // freq)``
expand filters, ``pct3x3`` of them 3x3, and ``squeeze_ratio * e_i`` squeeze
filters. ``batch_norm=True`` adds BatchNormalization after every conv but the
classifier; it folds into the convs at conversion, so the .tflite keeps the
paper's weight count.
"""

from __future__ import annotations

from mobilekit.backend import keras
from mobilekit.archs.registry import register
from mobilekit.archs._common import (add_batch_norm, check_choice, check_common, conv_relu, model_input,
                                     pool_features)
from mobilekit.errors import MobilekitError

NUM_FIRES = 8
BYPASSES = (None, "simple", "complex")

# version -> (conv1 filters, conv1 kernel, fire indices followed by a 3x3/2 max-pool)
_VERSIONS = {
    "1_0": (96, 7, (4, 8)),
    "1_1": (64, 3, (3, 5)),
}


def fire_widths(base_e: int, incr_e: int, freq: int, pct3x3: float,
                squeeze_ratio: float) -> list[tuple[int, int, int]]:
    """(squeeze, expand1x1, expand3x3) filters of fire2..fire9."""
    widths = []
    for i in range(NUM_FIRES):
        e = base_e + incr_e * (i // freq)
        e3 = int(round(e * pct3x3))
        widths.append((max(1, int(round(e * squeeze_ratio))), e - e3, e3))
    return widths


def _pooled(size: int) -> int:
    """Output size of a 3x3/2 max-pool in Caffe's ceil mode (the reference models')."""
    return -(-(size - 3) // 2) + 1 if size >= 3 else 0


def spatial_sizes(version: str, size: int) -> list[int]:
    """Feature-map size after conv1 and after each max-pool."""
    _, kernel, pooled_after = _VERSIONS[version]
    sizes = [(size - kernel) // 2 + 1]
    for _ in range(1 + len(pooled_after)):
        sizes.append(_pooled(sizes[-1]))
    return sizes


def _max_pool(x, name: str):
    """3x3/2 max-pool with Caffe's ceil mode: an odd remainder gets one padded row/column.

    Zero padding is exact here because the input is post-ReLU (>= 0).
    """
    pad_h, pad_w = ((d - 3) % 2 for d in x.shape[1:3])
    if pad_h or pad_w:
        x = keras.layers.ZeroPadding2D(((0, pad_h), (0, pad_w)), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)


def _min_input_size(version: str) -> int:
    size = 1
    while min(spatial_sizes(version, size)) < 1:
        size += 1
    return size


def fire(x, index: int, squeeze: int, expand1x1: int, expand3x3: int, batch_norm: bool):
    name = f"fire{index}"
    s = conv_relu(x, squeeze, 1, f"{name}_squeeze1x1", batch_norm=batch_norm)
    left = conv_relu(s, expand1x1, 1, f"{name}_expand1x1", batch_norm=batch_norm)
    right = conv_relu(s, expand3x3, 3, f"{name}_expand3x3", batch_norm=batch_norm)
    return keras.layers.Concatenate(name=f"{name}_concat")([left, right])


def _build(version: str, *, input_shape, classes, include_top, pooling,
           classifier_activation, dropout, base_e, incr_e, freq, pct3x3,
           squeeze_ratio, bypass, batch_norm, classifier_relu, batch_size):
    arch = f"squeezenet{version}"
    input_shape = check_common(arch, input_shape, classes, include_top, pooling,
                               classifier_activation, dropout)
    for key, value in (("base_e", base_e), ("incr_e", incr_e), ("freq", freq)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "incr_e" else 1):
            raise MobilekitError(f"{arch}: {key} must be a {'non-negative' if key == 'incr_e' else 'positive'} "
                                 f"int; received {key}={value!r}")
    if not isinstance(pct3x3, (int, float)) or not 0.0 <= pct3x3 <= 1.0:
        raise MobilekitError(f"{arch}: pct3x3 must be in [0, 1]; received pct3x3={pct3x3!r}")
    if not isinstance(squeeze_ratio, (int, float)) or not 0.0 < squeeze_ratio <= 1.0:
        raise MobilekitError(f"{arch}: squeeze_ratio must be in (0, 1]; "
                             f"received squeeze_ratio={squeeze_ratio!r}")
    check_choice(arch, "bypass", bypass, BYPASSES)
    widths = fire_widths(base_e, incr_e, freq, pct3x3, squeeze_ratio)
    if any(e1 == 0 or e3 == 0 for _, e1, e3 in widths):
        raise MobilekitError(f"{arch}: pct3x3={pct3x3!r} leaves a fire module with no 1x1 or no 3x3 "
                             f"expand filters; use 0 < pct3x3 < 1 with enough filters")
    min_size = _min_input_size(version)
    if min(input_shape[:2]) < min_size:
        raise MobilekitError(f"{arch}: input_shape={input_shape!r} is too small; height and width "
                             f"must be at least {min_size}")
    if bypass == "simple":
        # A simple bypass adds a fire module's input to its output: widths must match.
        for idx in range(1, NUM_FIRES, 2):
            if sum(widths[idx][1:]) != sum(widths[idx - 1][1:]):
                raise MobilekitError(
                    f"{arch}: bypass='simple' needs fire{idx + 2} to keep its input width; "
                    f"base_e={base_e}, incr_e={incr_e}, freq={freq} give "
                    f"{sum(widths[idx - 1][1:])} -> {sum(widths[idx][1:])}; use freq=2 or bypass='complex'")

    conv1_filters, conv1_kernel, pooled_after = _VERSIONS[version]
    inputs = model_input(input_shape, batch_size)
    x = conv_relu(inputs, conv1_filters, conv1_kernel, "conv1", strides=2, padding="valid",
                  batch_norm=batch_norm)
    x = _max_pool(x, "pool1")
    for i, (squeeze, e1, e3) in enumerate(widths):
        index = i + 2
        y = fire(x, index, squeeze, e1, e3, batch_norm)
        if bypass is not None:
            same_width = x.shape[-1] == e1 + e3
            if same_width and index % 2 == 1:
                y = keras.layers.Add(name=f"fire{index}_bypass")([x, y])
            elif bypass == "complex":
                shortcut = keras.layers.Conv2D(e1 + e3, 1, use_bias=not batch_norm,
                                               name=f"fire{index}_bypass_conv")(x)
                if batch_norm:
                    shortcut = add_batch_norm(shortcut, f"fire{index}_bypass_conv")
                y = keras.layers.Add(name=f"fire{index}_bypass")([shortcut, y])
        x = y
        if index in pooled_after:
            x = _max_pool(x, f"pool{index}")

    if include_top:
        if dropout:
            x = keras.layers.Dropout(dropout, name="drop9")(x)
        x = keras.layers.Conv2D(classes, 1, name="conv10")(x)
        if classifier_relu:
            x = keras.layers.ReLU(name="conv10_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool10")(x)
        if classifier_activation is not None:
            x = keras.layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = pool_features(x, pooling)
    return keras.Model(inputs, x, name=arch)


@register
def squeezenet1_0(*, input_shape=(224, 224, 3), classes=1000, include_top=True, pooling=None,
                  classifier_activation="softmax", dropout=0.5, base_e=128, incr_e=128, freq=2,
                  pct3x3=0.5, squeeze_ratio=0.125, bypass=None, batch_norm=False, classifier_relu=True, batch_size=None):
    """SqueezeNet 1.0: conv1 96x7x7/2, max-pools after conv1, fire4 and fire8.

    Example: ``squeezenet1_0(input_shape=(64, 64, 3), classes=10)``.

    Args:
        input_shape: (height, width, channels).
        classes: output classes of the conv10 classifier.
        include_top: keep the dropout + conv10 + global-pool classifier.
        pooling: without the top, None, "avg" or "max" global pooling.
        classifier_activation: "softmax" or None (logits).
        dropout: dropout rate before conv10 (0 disables it).
        base_e, incr_e, freq, pct3x3, squeeze_ratio: the paper's metaparameters.
        bypass: None, "simple" (residual adds around fire3/5/7/9) or "complex"
            (plus 1x1 convs on the other fire modules).
        batch_norm: BatchNormalization after each conv except conv10.
        classifier_relu: the reference models' ReLU on conv10's class maps before
            the global pool. It can silence a class for good when trained from
            scratch on small feature maps; False keeps the scores linear.
        batch_size: fixed batch size of the input (None for any).

    Returns:
        A ``tf_keras.Model``.

    Raises:
        MobilekitError: an invalid argument, named with its value.
    """
    return _build("1_0", **{k: v for k, v in locals().items()})


@register(aliases=("squeezenet",))
def squeezenet1_1(*, input_shape=(224, 224, 3), classes=1000, include_top=True, pooling=None,
                  classifier_activation="softmax", dropout=0.5, base_e=128, incr_e=128, freq=2,
                  pct3x3=0.5, squeeze_ratio=0.125, bypass=None, batch_norm=False, classifier_relu=True, batch_size=None):
    """SqueezeNet 1.1: conv1 64x3x3/2, max-pools after conv1, fire3 and fire5.

    Same arguments as ``squeezenet1_0``. Example:
    ``squeezenet1_1(input_shape=(64, 64, 3), classes=10, batch_norm=True)``.
    """
    return _build("1_1", **{k: v for k, v in locals().items()})
