"""The accuracy budget (``--max-accuracy-drop``): the most compression whose int8 file stays within the budget of the
float model, judged on a validation split of the training data (never trained on, never the test set).

The recipe's sparsity is the ceiling. Candidates, in an order that spends little (docs/accuracy-budget.md):

1. the recipe as asked (prune to the ceiling, then QAT); when its int8 file misses the budget, the same pruned
   model with post-training quantization instead (a conversion, no training);
2. when both miss, the floor: the float model with post-training quantization (a conversion), then with QAT (when
   the recipe has QAT, and QAT did not lose to post-training quantization at the ceiling by more than the budget:
   then later candidates skip the QAT stage). When the floor misses too, nothing between can be expected to meet
   it: the search stops;
3. when the floor meets it, a bisection over sparsity between the floor and the ceiling, at most SEARCH_TRAINED
   trained candidates in all, down to RESOLUTION.

Every candidate starts from the same float model (its weights restored), is converted to the int8 file it would
ship and is judged by that file's top-1 on the validation images. The build ships the meeting candidate with the
most sparsity (ties: the more accurate); when none meets, the least lossy, with a warning, or nothing with
``--strict-budget``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from mobilekit.errors import MobilekitError
from mobilekit.tasks.base import Data

SEARCH_TRAINED = 3  # candidates that train (prune and QAT stages): the ceiling and two more at most
RESOLUTION = 0.1  # the bisection stops when the sparsities that met and missed are this close
# Fewer validation images than this and the report warns: one image is more than a point of the budget.
FEW_VALIDATION_IMAGES = 100


def hold_out(cfg, data: Data, console) -> Data:
    """``data`` with ``cfg.validation_split`` of each training class moved to the validation split (seeded; at least
    one image of a class with two or more, and a class keeps at least one training image)."""
    from mobilekit.data import to_float

    ds = data.ds
    rng = np.random.default_rng(cfg.seed + 7)
    held = np.zeros(len(ds.y_train), bool)
    for label in np.unique(ds.y_train):
        members = np.flatnonzero(ds.y_train == label)
        n = min(len(members) - 1, max(1, int(round(len(members) * cfg.validation_split))))
        if n > 0:
            held[rng.choice(members, n, replace=False)] = True
    if not held.any():
        raise MobilekitError(f"validation_split={cfg.validation_split:g} of {len(ds.y_train)} training images holds "
                             "none out: give more images or a larger --validation-split")
    points = f"{cfg.max_accuracy_drop:g} point" + ("" if cfg.max_accuracy_drop == 1 else "s")
    console.print(f"   validation: {int(held.sum())} of the {len(ds.y_train)} training images held out to judge the "
                  f"accuracy budget ({points})")
    extra = dict(ds.extra)
    if held.sum() < FEW_VALIDATION_IMAGES:
        extra["warnings"] = [*extra.get("warnings", []), (
            f"the accuracy budget is judged on {int(held.sum())} validation images: one image is "
            f"{100 / held.sum():.2g} points, so the choice is noisy (more images, a larger --validation-split, or a "
            "fixed --sparsity)")]
    trained = replace(ds, x_train=ds.x_train[~held], y_train=ds.y_train[~held], extra=extra)
    return Data(trained, data.x_test, x_val=to_float(ds.x_train[held]), y_val=ds.y_train[held])


@dataclass
class Candidate:
    """One compression tried: what it is, its files, and how its int8 file did on the validation split."""

    sparsity: float
    scheme: str  # PQAT, QAT, CQAT, PCQAT, or PTQ (post-training quantization)
    state: object  # mobilekit.pipeline.stages.Trained
    files: tuple  # (float .tflite, int8 .tflite, rewrites log)
    validation: float  # the int8 file's top-1 on the validation images
    drop: float  # points lost against the float model there
    meets: bool
    seconds: float
    zeros: float  # the int8 file's zeros among its conv and FC weights
    error: float  # the drop's standard error in points (drop_error)

    def row(self) -> dict:
        return {"sparsity": self.sparsity, "scheme": self.scheme, "int8_validation": self.validation,
                "drop_points": round(self.drop, 3), "drop_se_points": round(self.error, 2), "meets": self.meets,
                "int8_bytes": len(self.files[1]), "int8_zeros": round(self.zeros, 4), "seconds": round(self.seconds, 1)}


def _zeros(content: bytes) -> float:
    from mobilekit.pipeline.stages import pruned_fraction
    from mobilekit.tflite_file import TfliteFile

    return pruned_fraction(TfliteFile(content).weight_sparsity())


def validation_predictions(model, data: Data) -> np.ndarray:
    """A Keras model's top-1 class of each validation image."""
    return np.argmax(model.predict(data.x_val, batch_size=500, verbose=0), axis=-1)


def drop_error(float_right: np.ndarray, int8_right: np.ndarray) -> float:
    """The standard error, in points, of the accuracy drop measured on these images: paired, so only the images the
    two models answer differently count (McNemar's discordant pairs)."""
    n = len(float_right)
    lost = int(np.sum(float_right & ~int8_right))
    gained = int(np.sum(~float_right & int8_right))
    return 100 * float(np.sqrt(max(0.0, lost + gained - (lost - gained) ** 2 / n))) / n


def _short(c: Candidate) -> str:
    return f"sparsity {c.sparsity:.0%} with {c.scheme}"


class Search:
    """The candidates of one build (see the module docstring): ``run`` returns the chosen one and the report's
    ``budget`` section."""

    def __init__(self, cfg, timer, data: Data, state, calibration, compress):
        from mobilekit.pipeline import stages

        self.cfg, self.timer, self.data, self.state = cfg, timer, data, state
        self.calibration, self.compress = calibration, compress
        self.model = state.model
        self.snapshot = self.model.get_weights()
        self.trainable = [layer.trainable for layer in self.model.layers]
        self.float_right = validation_predictions(self.model, data) == data.y_val
        self.float_validation = float(np.mean(self.float_right))
        self.tried: list[Candidate] = []
        self.trained = 0
        self.skip_qat: str | None = None  # why later candidates skip QAT (it lost to PTQ at the ceiling)
        self.pruning = stages.PruneGraph()  # one traced pruning graph for every candidate

    def restore(self) -> None:
        """The float model again: the pruning stage trains its layers in place."""
        self.model.set_weights(self.snapshot)
        for layer, trainable in zip(self.model.layers, self.trainable):
            layer.trainable = trainable

    def _config(self, sparsity: float, **kw):
        return replace(self.cfg, sparsity=sparsity, max_accuracy_drop=None, strict_budget=False, **kw)

    def judge(self, cfg, state, sparsity: float, scheme: str, started: float) -> Candidate:
        """Convert ``state`` as ``cfg`` would and judge its int8 file on the validation images."""
        from mobilekit.bench import evaluate_tflite
        from mobilekit.pipeline import stages

        done = next((c for c in self.tried if (c.sparsity, c.scheme) == (sparsity, scheme)), None)
        if done is not None:
            return done
        n = len(self.tried) + 1
        files = self.timer.run("convert" if n == 1 else f"convert_{n}", f"Converting candidate {n} ({sparsity:.0%} "
                               f"sparsity, {scheme}) and judging it on {len(self.data.y_val)} validation images",
                               stages.convert, cfg, state, self.calibration)
        int8_right = evaluate_tflite(files[1], self.data.x_val, self.data.y_val)["predictions"] == self.data.y_val
        validation = float(np.mean(int8_right))
        drop = 100 * (self.float_validation - validation)
        c = Candidate(sparsity, scheme, state, files, validation, drop, drop <= self.cfg.max_accuracy_drop + 1e-9,
                      time.perf_counter() - started, _zeros(files[1]), drop_error(self.float_right, int8_right))
        self.tried.append(c)
        self.timer.console.print(f"   candidate {n}, {_short(c)}: int8 {validation:.2%} on validation against float "
                                 f"{self.float_validation:.2%} ({drop:+.2f} points): "
                                 + ("within the budget" if c.meets else "over the budget"))
        return c

    def train(self, sparsity: float) -> bool:
        """A trained candidate at ``sparsity`` (the recipe's stages from the float model): its QAT file, and when
        that misses the budget (or the recipe has no QAT) its pre-QAT model with post-training quantization."""
        from mobilekit.pipeline import stages

        self.trained += 1
        started = time.perf_counter()
        self.restore()
        cfg = self._config(sparsity, **({"qat": False} if self.skip_qat else {}))
        suffix = "" if self.trained == 1 else f"_{self.trained}"
        label = f" [budget candidate: sparsity {sparsity:.0%}]" if self.trained > 1 else ""
        before, after = self.compress(cfg, self.timer, self.data, stages.Trained(self.model, dict(self.state.accuracy)),
                                      suffix=suffix, label=label, fallback=False, graph=self.pruning)
        qat = after is not before and self.judge(cfg, after, sparsity, stages.qat_scheme(after), started)
        if qat and qat.meets:
            return True
        ptq = self.judge(self._config(sparsity, qat=False), before, sparsity, "PTQ", started)
        if qat and not self.skip_qat and qat.drop - ptq.drop > self.cfg.max_accuracy_drop:
            self.skip_qat = (f"{qat.scheme} lost {qat.drop - ptq.drop:.1f} points to post-training quantization of the "
                             f"same model at sparsity {sparsity:.0%}: later candidates are post-training quantized")
            self.timer.console.print(f"   {self.skip_qat}")
        return ptq.meets

    def floor(self) -> bool:
        """The float model itself: post-training quantization (no training), then QAT when the recipe has it."""
        from mobilekit.pipeline import stages

        self.restore()
        started = time.perf_counter()
        if self.judge(self._config(0.0, qat=False), stages.Trained(self.model, dict(self.state.accuracy)), 0.0,
                      "PTQ", started).meets:
            return True
        return bool(self.cfg.spec.qat) and not self.skip_qat and self.train(0.0)

    def run(self) -> tuple[Candidate, dict]:
        ceiling = self.cfg.spec.sparsity
        if not self.train(ceiling) and self.floor():
            low, high = 0.0, ceiling
            while self.trained < SEARCH_TRAINED and high - low > RESOLUTION + 1e-9:
                middle = round((low + high) / 2, 4)
                if self.train(middle):
                    low = middle
                else:
                    high = middle
        meeting = [c for c in self.tried if c.meets]
        chosen = (max(meeting, key=lambda c: (c.sparsity, c.validation)) if meeting
                  else max(self.tried, key=lambda c: (c.validation, c.sparsity)))
        section = {"max_accuracy_drop": self.cfg.max_accuracy_drop, "met": chosen.meets,
                   "validation_images": int(len(self.data.y_val)), "validation_split": self.cfg.validation_split,
                   "float_validation": self.float_validation, "ceiling": ceiling, "chosen": chosen.row(),
                   "candidates": [c.row() for c in self.tried], "qat_skipped": self.skip_qat,
                   "pruning_graphs_reused": self.pruning.reused}
        return chosen, section


def search(cfg, timer, data: Data, state, calibration, compress) -> tuple[object, tuple, dict]:
    """(the chosen candidate's Trained state, its (float, int8, rewrites) files, report.json's ``budget``).

    Raises:
        MobilekitError: with ``cfg.strict_budget``, when no candidate met the budget (nothing written).
    """
    chosen, section = Search(cfg, timer, data, state, calibration, compress).run()
    if chosen.error > cfg.max_accuracy_drop:
        section["noise"] = (f"the validation split cannot resolve the budget: the shipped file's drop "
                            f"({chosen.drop:+.2f} points on {section['validation_images']} images) has a standard error "
                            f"of {chosen.error:.2f} points, more than the {cfg.max_accuracy_drop:g} allowed; the test "
                            "accuracy says what was kept (more images, or a larger --validation-split)")
    if not chosen.meets:
        line = missed(section)
        if cfg.strict_budget:
            raise MobilekitError(f"refused (--strict-budget): {line}; nothing was written")
        section["warning"] = line
    return chosen.state, chosen.files, section


def missed(section: dict) -> str:
    """The line saying the budget was not met, and what the shipped file costs."""
    c = section["chosen"]
    return (f"accuracy budget NOT met: no candidate of {len(section['candidates'])} kept the int8 file within "
            f"{section['max_accuracy_drop']:g} points of the float model on {section['validation_images']} validation "
            f"images; the least lossy (sparsity {c['sparsity']:.0%} with {c['scheme']}) loses {c['drop_points']:.2f} "
            "points and is what was written (--strict-budget refuses instead; longer --qat-epochs / --prune-epochs, "
            "or a larger --max-accuracy-drop)")
