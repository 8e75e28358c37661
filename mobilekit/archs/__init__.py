"""Architecture registry and builders: ``create(name, **metaparameters)``, ``list_archs()``.

Each family module (squeezenet, mobilenet, shufflenet, efficientnet, and the detector squeezedet) registers its public builders with
``@register`` (mobilekit.archs.registry). Importing this package is cheap: builders reach Keras
only when they are called.
"""

from mobilekit.archs.registry import (builder, check_kwargs, create, knob_types, list_archs, register, resolve,
                                     task_of)

# Family modules register their builders on import.
from mobilekit.archs import efficientnet, mobilenet, shufflenet, squeezedet, squeezenet  # noqa: E402,F401

__all__ = ["builder", "check_kwargs", "create", "knob_types", "list_archs", "register", "resolve", "task_of"]
