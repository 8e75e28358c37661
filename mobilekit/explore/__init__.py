"""Design-space exploration (`mobilekit explore`): many builds on Ray Tune, judged against targets.

Example::

    from mobilekit.explore import ExploreConfig, explore
    doc = explore(ExploreConfig(base={"arch": "squeezenet1_1", "input_size": 32, "epochs": 0.5},
                                space={"squeeze_ratio": [0.25, 0.5]}, out="build/sweep"))
    doc["recommended"], doc["saturation"]

Ray and TensorFlow load only when a sweep runs.
"""

__all__ = ["ExploreConfig", "Targets", "explore", "render"]

_LAZY = {"ExploreConfig": "mobilekit.explore.space", "Targets": "mobilekit.explore.space",
         "explore": "mobilekit.explore.engine", "render": "mobilekit.explore.render"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mobilekit.explore' has no attribute {name!r}")
