"""Guard rails: what a build tells its user when the result is not what they think it is (a model near
chance, a dataset too small for the batch size) and how a recipe was changed by flags."""

from __future__ import annotations

import math

import numpy as np

from mobilekit.errors import MobilekitError

MIN_STEPS_PER_EPOCH = 10
# A model within this many points of the best constant guess learned (almost) nothing.
NEAR_CHANCE_POINTS = 0.05
# Float -> int8 losses above this are worth a look (pruning, clustering or quantisation hurt).
LOSS_POINTS = 0.10
# A build whose int8 file keeps less than this share of the float model's lead over chance is refused (nothing
# written): a model that lost most of what it learned is not an artifact to ship. Applies when float leads
# chance by at least MIN_LEAD, and only on evidence: the upper end of the int8 accuracy's 95% interval must be
# below the line too (a handful of test images proves nothing either way).
MIN_KEPT_LEAD, MIN_LEAD = 0.5, 0.2


def chance(y_test, num_classes: int) -> tuple[float, float]:
    """(the best constant guess's accuracy, the majority class's share) on ``y_test``."""
    majority = float(np.bincount(np.asarray(y_test), minlength=num_classes).max() / max(1, len(y_test)))
    return max(1.0 / num_classes, majority), majority


def check_kept_accuracy(accuracy: dict, y_test, num_classes: int) -> None:
    """Refuse a build whose int8 file lost most of the float model's accuracy above chance.

    Raises:
        MobilekitError: naming both accuracies and what usually recovers them.
    """
    int8, float_ = accuracy.get("tflite_int8"), accuracy.get("keras_float")
    if int8 is None or float_ is None:
        return
    from mobilekit.pipeline.evaluation import wilson_interval

    base, _ = chance(y_test, num_classes)
    lead, n = float_ - base, len(y_test)
    if lead >= MIN_LEAD and wilson_interval(round(int8 * n), n)[1] < base + MIN_KEPT_LEAD * lead:
        stages = ", ".join(f"{k.removeprefix('keras_')} {v:.1%}" for k, v in accuracy.items()
                           if k.startswith("keras_") and isinstance(v, float))
        raise MobilekitError(f"refused: the int8 file's accuracy {int8:.1%} on {n} test images kept less than half "
                             f"of what the float model learned ({float_:.1%}, chance {base:.1%}; per stage: {stages}); "
                             "nothing was "
                             "written. Try a milder recipe (--recipe int8-qat or int8-ptq), --sparsity 0.3, or "
                             "longer stages (--prune-epochs, --qat-epochs)")


def data_warnings(num_train: int, batch_size: int) -> list[str]:
    steps = math.ceil(num_train / batch_size)
    if steps >= MIN_STEPS_PER_EPOCH:
        return []
    better = max(1, num_train // MIN_STEPS_PER_EPOCH)
    return [f"{num_train} training images at --batch-size {batch_size} give {steps} optimizer step(s) per epoch; "
            f"pass --batch-size {better} (about {math.ceil(num_train / better)} steps) or more --epochs"]


def accuracy_warnings(accuracy: dict, y_test, num_classes: int) -> list[str]:
    """Near-chance int8 accuracy (against 1/classes and the majority class) and large float -> int8 losses."""
    out = []
    int8 = accuracy.get("tflite_int8")
    if int8 is None:
        return out
    base, majority = chance(y_test, num_classes)
    if int8 <= base + NEAR_CHANCE_POINTS:
        out.append(f"int8 accuracy {int8:.1%} is within {NEAR_CHANCE_POINTS * 100:.0f} points of chance ({base:.1%}: "
                   f"{'the majority class' if majority > 1.0 / num_classes else f'1 in {num_classes}'}): "
                   "the model is useless as it is; train longer (--epochs), check the data, or prune less")
    elif accuracy.get("keras_float") is not None and accuracy["keras_float"] - int8 > LOSS_POINTS:
        out.append(f"int8 accuracy {int8:.1%} is {accuracy['keras_float'] - int8:.1%} points below float "
                   f"({accuracy['keras_float']:.1%}); see the per-stage accuracies: a longer fine-tune "
                   "(--prune-epochs, --qat-epochs) or a milder recipe usually recovers it")
    return out


def recipe_section(cfg) -> dict:
    """report.json's ``recipe``: the resolved recipe, the fields flags changed from the preset (``overrides``),
    and ``label``: the preset's name, or "NAME + overrides" when flags changed it."""
    from mobilekit.recipes import Recipe

    spec = cfg.spec.to_json()
    preset = Recipe.preset(cfg.recipe).to_json()
    overrides = {k: v for k, v in spec.items() if k != "name" and preset.get(k) != v}
    from mobilekit.pipeline.config import STAGE_EPOCHS

    for name, default in STAGE_EPOCHS.items():  # the budgets: the preset's, else the build's defaults
        if getattr(cfg, name) != (default if preset.get(name) is None else preset[name]):
            overrides[name] = getattr(cfg, name)
    label = spec["name"] + (" + overrides (" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + ")"
                            if overrides else "")
    return {**spec, "overrides": overrides, "label": label}
