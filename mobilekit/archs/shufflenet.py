"""ShuffleNet v1 and v2.

v1: Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural
Network for Mobile Devices", 2017 (arXiv:1707.01083), Table 1: conv1 3x3/2 with
24 filters, a 3x3/2 max-pool, then three stages of 4, 8 and 4 units (the first
of each with stride 2), bottlenecks a quarter of the unit's output width, and
no group conv on the first pointwise layer of stage 2.

v2: Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", 2018 (arXiv:1807.11164), Table 5 and Fig. 3(c, d): the
same stem and stage repeats, units that split the channels in two (stride 1)
or feed both branches the whole input (stride 2), concatenate and shuffle with
2 groups, and a 1x1 conv5 before the pool.

Channel shuffle is Reshape -> Permute -> Reshape and channel split is one
``ChannelSplit`` layer (``tf.split``); both pass through QAT and, with the
batch fixed to 1 at export, become RESHAPE/TRANSPOSE/RESHAPE and SPLIT, all
delegated to XNNPACK in int8. No Lambda layers.
"""

from __future__ import annotations

from mobilekit.backend import keras
from mobilekit.archs.registry import register
from mobilekit.archs._common import (add_batch_norm, check_choice, check_common, check_min_size,
                                     classifier_top, conv_relu, model_input)

# groups -> output channels of stages 2, 3, 4 at scale 1x (Table 1).
_V1_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                4: (272, 544, 1088), 8: (384, 768, 1536)}
# Units in stages 2, 3, 4 (v1 and v2).
_UNITS = (4, 8, 4)
# scale -> conv1 filters, as in the authors' released models (megvii ShuffleNet-Series):
# conv1 narrows with 0.5x and widens with 2.0x, but stays at 24 for 1.5x. No 0.25x model
# was released; keeping 0.5x's 12 gives the paper's 13 MFLOPs (13.3 M; 6 would give 11.0 M).
_V1_CONV1 = {0.25: 12, 0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
V1_SCALES = tuple(_V1_CONV1)


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def channel_shuffle(x, groups: int, name: str):
    """Channel shuffle from Reshape and Permute (QAT-compatible, no Lambda)."""
    h, w, c = x.shape[1:]
    x = keras.layers.Reshape((h, w, groups, c // groups), name=f"{name}_shuffle_split")(x)
    x = keras.layers.Permute((1, 2, 4, 3), name=f"{name}_shuffle_swap")(x)
    return keras.layers.Reshape((h, w, c), name=f"{name}_shuffle_merge")(x)


def average_pool_3x3_s2(x, name: str):
    """PyTorch's ``AvgPool2d(3, 2, padding=1)`` (zero padding counted in the mean) of the
    authors' code, as a frozen depthwise conv with weights 1/9.

    The pooling itself (AVERAGE_POOL_2D) is not delegated by this LiteRT's XNNPACK in
    int8, with SAME or VALID padding: each one split the graph (4 partitions, measured).
    A depthwise conv is delegated, and 1/9 is exact in int8 (scale 1/9/127 per channel).
    The layer is not trainable; ``analysis`` counts it as a pooling (0 MACs).
    """
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    pool = keras.layers.DepthwiseConv2D(3, strides=2, use_bias=False, trainable=False,
                                        depthwise_initializer=keras.initializers.Constant(1 / 9),
                                        name=name)
    return pool(x)


def _depthwise_bn(x, stride: int, name: str):
    """3x3 depthwise conv + BN, no ReLU (both versions), named ``name_dwconv``."""
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                     name=f"{name}_dwconv")(x)
    return add_batch_norm(x, f"{name}_dwconv")


def _v1_unit(x, out_channels: int, mid: int, groups: int, stride: int, first_groups: int, name: str):
    in_channels = x.shape[-1]
    branch_out = out_channels - in_channels if stride == 2 else out_channels
    y = conv_relu(x, mid, 1, f"{name}_gconv1", padding="valid", groups=first_groups, batch_norm=True)
    if first_groups > 1:
        y = channel_shuffle(y, first_groups, name)
    y = _depthwise_bn(y, stride, name)
    y = keras.layers.Conv2D(branch_out, 1, groups=groups, use_bias=False, name=f"{name}_gconv2")(y)
    y = add_batch_norm(y, f"{name}_gconv2")
    if stride == 2:
        y = keras.layers.ReLU(name=f"{name}_relu")(y)
        shortcut = average_pool_3x3_s2(x, f"{name}_avgpool")
        return keras.layers.Concatenate(name=f"{name}_concat")([shortcut, y])
    y = keras.layers.Add(name=f"{name}_add")([x, y])
    return keras.layers.ReLU(name=f"{name}_relu")(y)


@register
def shufflenet_v1(*, input_shape=(224, 224, 3), classes=1000, include_top=True, pooling=None,
                  classifier_activation="softmax", dropout=0.0, groups=3, scale=1.0, batch_size=None):
    """ShuffleNet v1 with ``groups`` pointwise groups at width ``scale`` ("ShuffleNet s x (g=...)").

    Example: ``shufflenet_v1(groups=8, scale=0.5, input_shape=(96, 96, 3), classes=10)``.

    Args:
        input_shape, classes, include_top, pooling, classifier_activation, dropout:
            as in Keras Applications.
        groups: pointwise-conv groups, one of 1, 2, 3, 4, 8.
        scale: width multiplier of stages 2-4, one of 0.25, 0.5, 1.0, 1.5, 2.0; widths
            are rounded to multiples of ``groups`` (bottlenecks too).
        batch_size: fixed batch size of the input (None for any).

    Raises:
        MobilekitError: an invalid argument, named with its value.
    """
    arch = "shufflenet_v1"
    input_shape = check_common(arch, input_shape, classes, include_top, pooling,
                               classifier_activation, dropout)
    check_choice(arch, "groups", groups, _V1_CHANNELS)
    check_choice(arch, "scale", scale, V1_SCALES)
    check_min_size(arch, input_shape)
    inputs = model_input(input_shape, batch_size)
    # A multiple of ``groups``, so stride-2 units' conv branches (out - in) split evenly
    # (the released g=8 0.5x model widens conv1 to 16 likewise).
    x = conv_relu(inputs, _round_to(_V1_CONV1[scale], groups), 3, "conv1", strides=2, batch_norm=True)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for stage, (channels, units) in enumerate(zip(_V1_CHANNELS[groups], _UNITS), start=2):
        out_channels = _round_to(channels * scale, groups)
        mid = _round_to(out_channels / 4, groups)
        for unit in range(units):
            first_groups = 1 if stage == 2 and unit == 0 else groups
            x = _v1_unit(x, out_channels, mid, groups, 2 if unit == 0 else 1, first_groups,
                         f"stage{stage}_unit{unit + 1}")
    x = classifier_top(x, classes, include_top, pooling, classifier_activation, dropout)
    return keras.Model(inputs, x, name=f"shufflenet_v1_g{groups}_{scale:g}x")


# scale -> output channels of stages 2, 3, 4 and conv5 (Table 5).
_V2_CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
                1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}
V2_SCALES = tuple(_V2_CHANNELS)


def _v2_branch(x, channels: int, stride: int, name: str):
    """1x1 conv + BN + ReLU, 3x3 depthwise + BN, 1x1 conv + BN + ReLU (Fig. 3, right branch)."""
    x = conv_relu(x, channels, 1, f"{name}_conv1", batch_norm=True)
    x = _depthwise_bn(x, stride, name)
    return conv_relu(x, channels, 1, f"{name}_conv2", batch_norm=True)


def _v2_unit(x, out_channels: int, stride: int, name: str):
    from mobilekit.layers import ChannelSplit

    half = out_channels // 2
    if stride == 1:
        left, right = ChannelSplit(2, name=f"{name}_split")(x)
    else:
        left = _depthwise_bn(x, stride, f"{name}_proj")
        left = conv_relu(left, half, 1, f"{name}_proj_conv", batch_norm=True)
        right = x
    right = _v2_branch(right, half, stride, f"{name}_main")
    x = keras.layers.Concatenate(name=f"{name}_concat")([left, right])
    return channel_shuffle(x, 2, name)


@register
def shufflenet_v2(*, input_shape=(224, 224, 3), classes=1000, include_top=True, pooling=None,
                  classifier_activation="softmax", dropout=0.0, scale=1.0, batch_size=None):
    """ShuffleNet v2 at width ``scale`` ("ShuffleNet v2 s x").

    Example: ``shufflenet_v2(scale=0.5, input_shape=(96, 96, 3), classes=10)``.

    Args:
        input_shape, classes, include_top, pooling, classifier_activation, dropout:
            as in Keras Applications.
        scale: one of 0.5, 1.0, 1.5, 2.0 (Table 5's stage and conv5 widths).
        batch_size: fixed batch size of the input (None for any).

    Raises:
        MobilekitError: an invalid argument, named with its value.
    """
    arch = "shufflenet_v2"
    input_shape = check_common(arch, input_shape, classes, include_top, pooling,
                               classifier_activation, dropout)
    check_choice(arch, "scale", scale, V2_SCALES)
    check_min_size(arch, input_shape)
    *stages, conv5 = _V2_CHANNELS[scale]
    inputs = model_input(input_shape, batch_size)
    x = conv_relu(inputs, 24, 3, "conv1", strides=2, batch_norm=True)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for stage, (channels, units) in enumerate(zip(stages, _UNITS), start=2):
        for unit in range(units):
            x = _v2_unit(x, channels, 2 if unit == 0 else 1, f"stage{stage}_unit{unit + 1}")
    x = conv_relu(x, conv5, 1, "conv5", batch_norm=True)
    x = classifier_top(x, classes, include_top, pooling, classifier_activation, dropout)
    return keras.Model(inputs, x, name=f"shufflenet_v2_{scale:g}x")
