"""Weight porters: pretrained checkpoints from other frameworks into mobilekit builders."""

from mobilekit.converters.torch_legacy import load_state_dict
from mobilekit.converters.torchvision_mobilenet_v2 import (imagenet_mobilenet_v2, port_state_dict,
                                                           torchvision_checkpoint)

__all__ = ["load_state_dict", "port_state_dict", "imagenet_mobilenet_v2", "torchvision_checkpoint"]
