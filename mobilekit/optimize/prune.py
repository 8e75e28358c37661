"""Magnitude pruning with tfmot's PolynomialDecay schedule."""

from __future__ import annotations

import numpy as np

from mobilekit._checks import validate_sparsity
from mobilekit.backend import keras, tf, tfmot
from mobilekit.errors import MobilekitError

# Layers whose kernels tfmot prunes; DepthwiseConv2D is never pruned by tfmot.
_KERNEL_LAYERS = ("Conv2D", "Dense")
# Weightless layers without a pruning registry entry (a pretrained model's in-model input normalisation): copied.
_WEIGHTLESS_UNREGISTERED = (keras.layers.Rescaling,)


def _check_model(model, what: str):
    if not isinstance(model, keras.Model):
        raise MobilekitError(f"{what} expects a tf_keras.Model; received {type(model).__name__}")
    if not model.built:
        raise MobilekitError(f"{what} expects a built model; {model.name!r} is not built")


def prune(model, sparsity, *, end_step: int, begin_step: int = 0, frequency: int = 50,
          m_by_n: tuple[int, int] | None = None):
    """Wrap ``model`` for magnitude pruning that reaches ``sparsity`` at ``end_step``.

    Example: ``pruned = prune(model, 0.5, end_step=300)``; train it with
    ``tfmot.sparsity.keras.UpdatePruningStep()`` among the callbacks.

    Args:
        model: a built ``tf_keras.Model``.
        sparsity: final fraction of zero weights in every Conv2D/Dense kernel: a float, or a float32
            ``tf.Variable`` read at every mask update, so one wrapped model (and its traced training step) serves
            several targets (mobilekit.pipeline.stages.PruneGraph).
        end_step: optimizer step at which the final sparsity is reached.
        begin_step: first pruning step.
        frequency: steps between mask updates.
        m_by_n: structured pruning instead, e.g. (2, 4): 2 zeros in every 4 consecutive weights
            along the input channels (tfmot ``sparsity_m_by_n``; ``sparsity`` is then ignored). Layers it cannot apply to (fewer than n input channels, e.g.
            an RGB stem) stay dense.

    Raises:
        MobilekitError: not a built Keras model, or sparsity outside [0, 1).
    """
    _check_model(model, "prune")
    if isinstance(sparsity, tf.Variable):
        validate_sparsity(float(sparsity.numpy()))
    else:
        sparsity = validate_sparsity(sparsity)
    if end_step <= begin_step:
        raise MobilekitError(f"end_step must exceed begin_step; received end_step={end_step}, "
                             f"begin_step={begin_step}")
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=begin_step,
        end_step=end_step, frequency=max(1, min(frequency, end_step - begin_step)))
    if m_by_n is None:
        if not any(isinstance(layer, _WEIGHTLESS_UNREGISTERED) for layer in model.layers):
            return tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)

        def wrap_known(layer):  # tfmot's registry refuses a whole model holding a layer it does not know
            if isinstance(layer, _WEIGHTLESS_UNREGISTERED):
                return layer.__class__.from_config(layer.get_config())
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

        return keras.models.clone_model(model, clone_function=wrap_known)
    m, n = m_by_n
    if not (isinstance(m, int) and isinstance(n, int) and 0 < m < n):
        raise MobilekitError(f"m_by_n must be two ints 0 < m < n such as (2, 4); received m_by_n={m_by_n!r}")

    def wrap(layer):
        if type(layer).__name__ in _KERNEL_LAYERS and layer.kernel.shape[-2] % n == 0:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule,
                                                            sparsity_m_by_n=(m, n))
        return layer

    return keras.models.clone_model(model, clone_function=wrap)


def strip_pruning(model):
    """The plain Keras model under pruning wrappers (zeros kept in the kernels)."""
    return tfmot.sparsity.keras.strip_pruning(model)


def sparsity_masks(model) -> dict[str, np.ndarray]:
    """{layer name: kernel != 0} for every Conv2D/Dense layer with pruned zeros."""
    masks = {}
    for layer in model.layers:
        if type(layer).__name__ in _KERNEL_LAYERS:
            mask = layer.kernel.numpy() != 0
            if not mask.all():
                masks[layer.name] = mask
    return masks
