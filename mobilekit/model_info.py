"""`mobilekit info` as a function: an untrained arch's complexity and, with devices, its emulated ARM cost."""

from __future__ import annotations


def info(arch: str, input_size=224, classes: int = 1000, arch_kwargs: dict | None = None,
         devices=(), return_model: bool = False):
    """`mobilekit info` as a function: params, MACs, weight bytes, peak activations and the per-layer
    table of the untrained ``arch`` at ``input_size``, a side or a (height, width) pair (and, with ``devices``,
    emulated ARM counts and predicted latency of its untrained float and int8 files). With ``return_model``: (that
    dict, the Keras model).

    Example: ``info("mobilenet_v1", 160, arch_kwargs={"alpha": 0.5})["macs"]``.
    """
    from mobilekit import archs
    from mobilekit.complexity import complexity, peak_activation_elements, weight_bytes
    from mobilekit.settings import size_hw

    arch_kwargs = dict(arch_kwargs or {})
    shape = (*size_hw(input_size), 3)
    model = archs.create(arch, input_shape=shape, classes=classes, **arch_kwargs)
    summary = complexity(model)
    peak = peak_activation_elements(model)
    result = {"arch": archs.resolve(arch), "metaparameters": arch_kwargs, "input_shape": list(shape),
              "classes": classes, "params": summary["params"], "trainable_params": summary["trainable_params"],
              "macs": summary["macs"], "weight_bytes": weight_bytes(model),
              "peak_activation_bytes": {"int8": peak, "float32": 4 * peak}, "layers": summary["layers"]}
    if devices:
        result["arm"] = untrained_arm(model, list(devices))
    return (result, model) if return_model else result


def untrained_arm(model, device_names: list[str]) -> dict:
    """Emulated counts and device predictions for the untrained float and int8 files of ``model``."""
    from mobilekit.bench.devices import arm_section
    from mobilekit.convert import convert_pair, random_calibration

    pair = convert_pair(model, random_calibration(model.input_shape[1:]))
    return {kind: arm_section(pair[kind], device_names=device_names) for kind in ("float", "int8")}
