"""SqueezeDet (Wu, Iandola, Jin, Keutzer 2016): a SqueezeNet backbone, fire10 and fire11 at stride 16, then the
ConvDet head: 3x3 convs that predict, for each cell of the feature map, K anchors x (4 box deltas, C class scores).
The same head also sits on MobileNet v2's or EfficientNet-Lite0's stride-16 features (``backbone``), which have
ImageNet weights offline (``--weights imagenet``).

The head is two convs, not SqueezeDet's one: one for the K x 4 deltas and one for the K x C class logits, so each
output gets its own int8 scale (one scale shared by pixel-range deltas and probabilities rounds every score to zero).
Class scores are per-class sigmoids (docs/detection.md: the documented modern equivalent of SqueezeDet's confidence
times softmax, and what TFLite_Detection_PostProcess reads). Outputs: ``deltas`` ``[batch, N, 4]`` and ``logits``
``[batch, N, C]`` with ``N = grid_h * grid_w * K``, cell-major as mobilekit.detection.boxes.anchor_grid; the sigmoid
is applied where the scores are used (the loss works on logits; the .tflite gets a LOGISTIC op before the
post-processing).
"""

from __future__ import annotations

import math

from mobilekit.archs.registry import register
from mobilekit.backend import keras
from mobilekit.errors import MobilekitError

SQUEEZENETS = ("squeezenet1_0", "squeezenet1_1")
# The other backbones end at their last stride-16 block (MobileNet v2's 96-channel stage, EfficientNet-Lite0's 112-
# channel stage), where SqueezeNet's fire9 ends; the blocks after it are not built.
STRIDE16 = {"mobilenet_v2": "block_12_add", "efficientnet_lite0": "block_10_add"}
BACKBONES = (*SQUEEZENETS, *STRIDE16)
DEFAULT_BACKBONE = "squeezenet1_1"
# The backbone keywords each kind takes (the others keep their defaults): SqueezeNet's metaparameters, or the width
# and the checkpoint layout (set by --weights) of the inverted-residual backbones.
SQUEEZENET_KNOBS = {"batch_norm": True, "base_e": 128, "incr_e": 128, "freq": 2, "pct3x3": 0.5, "squeeze_ratio": 0.125}
LAYOUT_KNOBS = {"width": 1.0, "padding": "same", "bn_epsilon": 1e-3, "normalization": None}
# The layers a detector adds to its backbone (trained first, on the frozen backbone, in a transfer build).
HEAD_PREFIXES = ("fire10_", "fire11_", "convdet_", "deltas", "logits")
MAX_ANCHORS_PER_CELL = 64
# SqueezeDet's fire10 and fire11: 96 squeeze, 384 + 384 expand filters each.
FIRE10_11 = (96, 384, 384)
# The class logits' bias starts at the log-odds of this prior (focal loss, Lin et al. 2017): nearly every anchor is
# background, and a 0.5 start makes the first steps' loss all false positives.
SCORE_PRIOR = 0.01


def check_head(kwargs: dict) -> None:
    """The detector's own keywords in ``kwargs`` (backbone, anchors_per_cell, classes), checked without Keras.

    Raises:
        MobilekitError: one line naming the bad value.
    """
    backbone = kwargs.get("backbone", DEFAULT_BACKBONE)
    if backbone not in BACKBONES:
        raise MobilekitError(f"squeezedet: backbone must be one of {', '.join(BACKBONES)}; received "
                             f"backbone={backbone!r}")
    foreign = LAYOUT_KNOBS if backbone in SQUEEZENETS else {k: v for k, v in SQUEEZENET_KNOBS.items()
                                                            if k != "batch_norm"}  # a build's training default
    for key, default in foreign.items():
        if key in kwargs and kwargs[key] != default:
            raise MobilekitError(f"squeezedet: {key} does not apply to backbone={backbone!r}; received "
                                 f"{key}={kwargs[key]!r}")
    for key, high in (("classes", None), ("anchors_per_cell", MAX_ANCHORS_PER_CELL)):
        value = kwargs.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (high and value > high):
            raise MobilekitError(f"squeezedet: {key} must be a positive int" + (f" up to {high}" if high else "")
                                 + f"; received {key}={value!r}")


def convdet_head(features, anchors_per_cell: int, classes: int, dropout: float = 0.5):
    """The ConvDet head on ``features``: (deltas ``[batch, N, 4]``, class logits ``[batch, N, C]``)."""
    if dropout:
        features = keras.layers.Dropout(dropout, name="convdet_dropout")(features)
    gh, gw = int(features.shape[1]), int(features.shape[2])
    n = gh * gw * anchors_per_cell
    deltas = keras.layers.Conv2D(anchors_per_cell * 4, 3, padding="same", name="convdet_deltas",
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))(features)
    deltas = keras.layers.Reshape((n, 4), name="deltas")(deltas)
    bias = -math.log((1 - SCORE_PRIOR) / SCORE_PRIOR)
    logits = keras.layers.Conv2D(anchors_per_cell * classes, 3, padding="same", name="convdet_scores",
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                                 bias_initializer=keras.initializers.Constant(bias))(features)
    return deltas, keras.layers.Reshape((n, classes), name="logits")(logits)


def head_layers(model) -> list[str]:
    """The names of the layers a detector adds to its backbone (fire10, fire11, the ConvDet convs)."""
    return [layer.name for layer in model.layers if layer.name.startswith(HEAD_PREFIXES)]


def _backbone(backbone: str, input_shape, batch_size, knobs: dict):
    """The backbone's stride-16 features: (its input, the feature tensor)."""
    from mobilekit.archs.registry import create

    if backbone in SQUEEZENETS:
        base = create(backbone, input_shape=tuple(input_shape), include_top=False, batch_size=batch_size,
                      **{k: knobs[k] for k in SQUEEZENET_KNOBS})
        return base.input, base.output
    width = {"mobilenet_v2": "alpha", "efficientnet_lite0": "width_coefficient"}[backbone]
    base = create(backbone, input_shape=tuple(input_shape), include_top=False, batch_size=batch_size,
                  **{width: knobs["width"]}, **{k: knobs[k] for k in ("padding", "bn_epsilon", "normalization")})
    return base.input, base.get_layer(STRIDE16[backbone]).output


@register(task="detection")
def squeezedet(*, input_shape=(128, 128, 3), classes=10, anchors_per_cell=9, backbone=DEFAULT_BACKBONE,
               dropout=0.5, batch_norm=True, base_e=128, incr_e=128, freq=2, pct3x3=0.5, squeeze_ratio=0.125,
               width=1.0, padding="same", bn_epsilon=1e-3, normalization=None, batch_size=None):
    """SqueezeDet: a backbone to stride 16 (SqueezeNet's fire9, or MobileNet v2's / EfficientNet-Lite0's last
    stride-16 block), fire10 and fire11, and the ConvDet head.

    Example: ``squeezedet(input_shape=(128, 128, 3), classes=10, anchors_per_cell=9)``;
    ``squeezedet(backbone="mobilenet_v2", width=0.5)``.

    Args:
        input_shape: (height, width, channels).
        classes: object classes (no background class: scores are per-class sigmoids).
        anchors_per_cell: K anchor shapes in every cell (9, as the paper).
        backbone: "squeezenet1_0" (the paper's), "squeezenet1_1" (2.4x fewer MACs), "mobilenet_v2" or
            "efficientnet_lite0".
        dropout: before the head (the paper's 0.5).
        batch_norm: BatchNormalization after fire10/11's convs and a SqueezeNet backbone's (folded at conversion).
        base_e, incr_e, freq, pct3x3, squeeze_ratio: a SqueezeNet backbone's metaparameters, as for classification.
        width: MobileNet v2's alpha or EfficientNet-Lite0's width coefficient.
        padding, bn_epsilon, normalization: the MobileNet v2 / EfficientNet-Lite0 backbone's checkpoint layout
            (mobilekit.archs.mobilenet.mobilenet_v2), set by ``--weights``.
        batch_size: fixed batch size of the input (None for any).

    Returns:
        A ``tf_keras.Model`` with outputs ``deltas`` and ``logits``.

    Raises:
        MobilekitError: an invalid argument, named with its value.
    """
    from mobilekit.archs.squeezenet import fire

    knobs = {"batch_norm": batch_norm, "base_e": base_e, "incr_e": incr_e, "freq": freq, "pct3x3": pct3x3,
             "squeeze_ratio": squeeze_ratio, "width": width, "padding": padding, "bn_epsilon": bn_epsilon,
             "normalization": normalization}
    check_head({"backbone": backbone, "anchors_per_cell": anchors_per_cell, "classes": classes, **knobs})
    inputs, x = _backbone(backbone, input_shape, batch_size, knobs)
    for index in (10, 11):
        x = fire(x, index, *FIRE10_11, batch_norm)
    deltas, scores = convdet_head(x, anchors_per_cell, classes, dropout)
    return keras.Model(inputs, [deltas, scores], name="squeezedet")
