"""ShuffleNet v1.

Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network
for Mobile Devices", 2017 (arXiv:1707.01083), Table 1: conv1 3x3/2 with 24
filters, a 3x3/2 max-pool, then three stages of 4, 8 and 4 units (the first of
each with stride 2), bottlenecks a quarter of the unit's output width, and no
group conv on the first pointwise layer of stage 2.

Channel shuffle is Reshape -> Permute -> Reshape (QAT passes them through;
with the batch fixed to 1 at export they become RESHAPE/TRANSPOSE/RESHAPE).
The stride-2 shortcut pools like the authors' PyTorch code (zero padding
counted in the mean). The stride-2 unit applies its ReLU to the conv branch before the Concatenate:
the pooled shortcut is already non-negative, so this equals the paper's
ReLU after the concat and keeps XNNPACK's partition whole.
"""

from __future__ import annotations

from mobilekit._tf import keras
from mobilekit.archs import register
from mobilekit.archs._common import (add_batch_norm, check_common, check_min_size, classifier_top,
                                     conv_relu, model_input)
from mobilekit.errors import MobilekitError

# groups -> output channels of stages 2, 3, 4 at scale 1x (Table 1).
_V1_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                4: (272, 544, 1088), 8: (384, 768, 1536)}
_V1_UNITS = (4, 8, 4)
# scale -> conv1 filters, as in the authors' released models (megvii ShuffleNet-Series):
# conv1 narrows with 0.5x and widens with 2.0x, but stays at 24 for 1.5x.
_V1_CONV1 = {0.25: 6, 0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
V1_SCALES = tuple(_V1_CONV1)


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def channel_shuffle(x, groups: int, name: str):
    """Channel shuffle from Reshape and Permute (QAT-compatible, no Lambda)."""
    h, w, c = x.shape[1:]
    x = keras.layers.Reshape((h, w, groups, c // groups), name=f"{name}_shuffle_split")(x)
    x = keras.layers.Permute((1, 2, 4, 3), name=f"{name}_shuffle_swap")(x)
    return keras.layers.Reshape((h, w, c), name=f"{name}_shuffle_merge")(x)


def _v1_unit(x, out_channels: int, mid: int, groups: int, stride: int, first_groups: int, name: str):
    in_channels = x.shape[-1]
    branch_out = out_channels - in_channels if stride == 2 else out_channels
    y = conv_relu(x, mid, 1, f"{name}_gconv1", padding="valid", groups=first_groups, batch_norm=True)
    if first_groups > 1:
        y = channel_shuffle(y, first_groups, name)
    y = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                     name=f"{name}_dwconv")(y)
    y = add_batch_norm(y, f"{name}_dwconv")
    y = keras.layers.Conv2D(branch_out, 1, groups=groups, use_bias=False, name=f"{name}_gconv2")(y)
    y = add_batch_norm(y, f"{name}_gconv2")
    if stride == 2:
        y = keras.layers.ReLU(name=f"{name}_relu")(y)
        # PyTorch's AvgPool2d(3, 2, padding=1) of the authors' code: zero padding counted in
        # the mean. TF's padding="same" pool excludes it, and LiteRT's XNNPACK leaves that
        # int8 AVERAGE_POOL_2D outside its partition (3 extra partitions, measured).
        shortcut = keras.layers.ZeroPadding2D(1, name=f"{name}_avgpool_pad")(x)
        shortcut = keras.layers.AveragePooling2D(3, strides=2, name=f"{name}_avgpool")(shortcut)
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
    if groups not in _V1_CHANNELS or isinstance(groups, bool):
        raise MobilekitError(f"{arch}: groups must be one of {sorted(_V1_CHANNELS)}; received groups={groups!r}")
    if scale not in V1_SCALES or isinstance(scale, bool):
        raise MobilekitError(f"{arch}: scale must be one of {V1_SCALES}; received scale={scale!r}")
    check_min_size(arch, input_shape)
    inputs = model_input(input_shape, batch_size)
    # A multiple of ``groups``, so stride-2 units' conv branches (out - in) split evenly
    # (the released g=8 0.5x model widens conv1 to 16 likewise).
    x = conv_relu(inputs, _round_to(_V1_CONV1[scale], groups), 3, "conv1", strides=2, batch_norm=True)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for stage, (channels, units) in enumerate(zip(_V1_CHANNELS[groups], _V1_UNITS), start=2):
        out_channels = _round_to(channels * scale, groups)
        mid = _round_to(out_channels / 4, groups)
        for unit in range(units):
            first_groups = 1 if stage == 2 and unit == 0 else groups
            x = _v1_unit(x, out_channels, mid, groups, 2 if unit == 0 else 1, first_groups,
                         f"stage{stage}_unit{unit + 1}")
    x = classifier_top(x, classes, include_top, pooling, classifier_activation, dropout)
    return keras.Model(inputs, x, name=f"shufflenet_v1_g{groups}_{scale:g}x")
