"""Transfer learning: a pretrained backbone adapted to the build's classes in two phases.

Phase 1 (``head``): the new classifier alone on the frozen backbone. Phase 2 (``fine_tune``): the top of
the backbone (``--fine-tune``: ``all``, ``none``, ``block_N`` and every layer after it, or a fraction of
the weighted layers counted from the top) at a low learning rate, after recompiling. The backbone's
BatchNormalization layers stay frozen in both phases and in the compression stages after them: a frozen Keras
BN layer runs in inference mode, so its ImageNet statistics are used, not a small batch's (the Keras
transfer-learning guide's rule). BN layers of the new head (a detector's fire10 and fire11) have no statistics to
keep and train as in a build from scratch: frozen, they are the identity, and EfficientNet-Lite0's features (5x
MobileNet v2's) reached the head unnormalised and blew its training up. The recipe's pruning / clustering / QAT
then fine-tune every other layer at ``fine_tune_lr``.
"""

from __future__ import annotations

from mobilekit.errors import MobilekitError
from mobilekit.pipeline.config import BLOCK_NAME

def is_batch_norm(layer) -> bool:
    return type(layer).__name__ == "BatchNormalization"


def _weighted(model) -> list:
    """Layers with weights that training may change (BatchNormalization never does here)."""
    return [layer for layer in model.layers if layer.weights and not is_batch_norm(layer)]


def blocks(model) -> list[str]:
    """The model's block names (``block_0`` ...) in order."""
    names = []
    for layer in model.layers:
        m = BLOCK_NAME.match(layer.name)
        if m and m.group(0) not in names:
            names.append(m.group(0))
    return names


def fine_tune_layers(model, fine_tune: str, head: tuple[str, ...] = ("logits",)) -> list[str]:
    """Names of the layers phase 2 trains: the ``head`` layers and the backbone layers ``fine_tune`` selects.

    Raises:
        MobilekitError: ``block_N`` that names no block of ``model`` (the blocks are listed).
    """
    weighted = _weighted(model)
    if fine_tune == "none":
        chosen = []
    elif fine_tune == "all":
        chosen = weighted
    elif fine_tune.startswith("block_"):
        names = blocks(model)
        if fine_tune not in names:
            raise MobilekitError(f"fine_tune={fine_tune!r} names no block of {model.name}; its blocks are "
                                 f"{names[0]} .. {names[-1]}" if names else f"{model.name} has no blocks")
        first = next(i for i, layer in enumerate(model.layers) if layer.name.startswith(fine_tune + "_"))
        after = {id(layer) for layer in model.layers[first:]}
        chosen = [layer for layer in weighted if id(layer) in after]
    else:
        backbone = [layer for layer in weighted if layer.name not in head]
        count = max(1, round(float(fine_tune) * len(backbone)))
        chosen = backbone[len(backbone) - count:]
    return list(dict.fromkeys([layer.name for layer in chosen] + list(head)))


def set_trainable(model, names, head: tuple[str, ...] = ()) -> dict:
    """Freeze every layer but ``names`` (BatchNormalization frozen, in inference mode, unless it is one of the new
    ``head``'s layers); returns counts."""
    names = set(names)
    model.trainable = True
    for layer in model.layers:
        layer.trainable = layer.name in names and (not is_batch_norm(layer) or layer.name in head)
    trainable = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    frozen = sum(int(w.shape.num_elements()) for w in model.non_trainable_weights)
    head_bn = any(is_batch_norm(model.get_layer(n)) for n in head)
    return {"trainable_layers": sorted(n for n in names if model.get_layer(n).weights),
            "trainable_params": trainable, "frozen_params": frozen,
            "batch_norm": "backbone's frozen (inference mode), the new head's trained" if head_bn
            else "frozen (inference mode)"}


def check_fine_tune(model, fine_tune: str) -> None:
    """``fine_tune`` against the model's layers, before any data is read."""
    fine_tune_layers(model, fine_tune, head_layers(model))


def head_layers(model) -> tuple[str, ...]:
    """The layers a transfer build adds to the pretrained backbone: a classifier's ``logits``, or a detector's
    fire10, fire11 and ConvDet convs."""
    from mobilekit.archs.squeezedet import head_layers as detector_head

    return tuple(detector_head(model)) or ("logits",)


def train_phases(cfg, data, model) -> tuple[dict, list[dict]]:
    """Phase 1 (head) and phase 2 (fine-tune) on ``model`` in place; (accuracies, phase records)."""
    from mobilekit import tasks
    from mobilekit.pipeline.training import fit, steps

    n = len(data.ds.x_train)
    phases, accuracy = [], {}
    head = head_layers(model)
    plan = [("head", cfg.head_epochs, cfg.lr, list(head), "new head on the frozen backbone"),
            ("fine_tune", cfg.epochs if cfg.fine_tune != "none" else 0.0, cfg.fine_tune_lr,
             fine_tune_layers(model, cfg.fine_tune, head), f"fine-tuning ({cfg.fine_tune} of the backbone)")]
    for name, epochs, lr, layers, title in plan:
        record = {"phase": name, "epochs": epochs, "steps": steps(cfg, n, epochs) if epochs > 0 else 0,
                  "lr": lr, **set_trainable(model, layers, head)}
        if name == "fine_tune":
            record["fine_tune"] = cfg.fine_tune
        if epochs > 0:
            fit(model, data.ds.x_train, data.ds.y_train, cfg, epochs, lr, title, seed_offset=5 + len(phases))
            accuracy[f"keras_{name}"] = record["accuracy"] = tasks.of(cfg.arch).keras_metric(model, data)
        phases.append(record)
    # The compression stages after these fine-tune every layer but the backbone's BatchNormalization.
    set_trainable(model, [layer.name for layer in _weighted(model)] + list(head), head)
    return accuracy, phases
