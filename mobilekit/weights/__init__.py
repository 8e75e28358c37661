"""Weight porters: pretrained checkpoints from other frameworks into mobilekit builders.

``PRETRAINED`` (``converters.pretrained``) lists the (arch, weights) pairs with an offline source;
:func:`pretrained_model` builds one, ported, with ImageNet's 1,000-class head or a new head for the user's
classes. The porters (``torchvision_mobilenet_v2``, ``efficientnet_lite``) and the legacy-checkpoint reader
(``torch_legacy``) are leaves.
"""

from mobilekit.weights.efficientnet_lite import efficientnet_lite0_checkpoint
from mobilekit.weights.pretrained import (HEAD, PRETRAINED, PretrainedWeights, imagenet_efficientnet_lite0,
                                             imagenet_mobilenet_v2, pretrained, pretrained_for,
                                             pretrained_model)
from mobilekit.weights.torch_legacy import load_state_dict
from mobilekit.weights.torchvision_mobilenet_v2 import port_state_dict, torchvision_checkpoint

__all__ = ["PRETRAINED", "PretrainedWeights", "pretrained", "pretrained_for", "pretrained_model", "load_state_dict", "port_state_dict",
           "imagenet_mobilenet_v2", "imagenet_efficientnet_lite0", "torchvision_checkpoint",
           "efficientnet_lite0_checkpoint", "HEAD"]
