"""The accuracy budget: which candidates the search tries, in what order, and what it ships (unit, no training:
each candidate's int8 file is a label its fake accuracy is looked up by); the settings' rules; the validation
split; a build whose budget cannot be met (warning, and --strict-budget's refusal)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mobilekit.errors import MobilekitError
from mobilekit.pipeline import BuildConfig, budget, stages
from mobilekit.tasks.base import Data

FLOAT = 0.90  # the float model's validation top-1 in the unit cases
SEARCH = budget.Search  # the class, before a test replaces it
IMAGES = 1000  # validation images of the unit cases (all of class 0)


def _answers(accuracy: float) -> np.ndarray:
    """Predictions right on the first ``accuracy`` of the validation images (class 0), wrong (class 1) after."""
    return (np.arange(IMAGES) >= round(accuracy * IMAGES)).astype(np.int64)


class _Timer:
    class console:  # noqa: N801 - the StageTimer's attribute
        @staticmethod
        def print(*args, **kw):
            pass

    def __init__(self):
        self.stages = []

    def run(self, name, title, fn, *args, **kw):
        self.stages.append(name)
        return fn(*args, **kw)


class _Model:
    layers = ()

    def get_weights(self):
        return []

    def set_weights(self, weights):
        pass


def _search(monkeypatch, accuracy, budget_points=1.0, **overrides):
    """A Search whose candidate at (sparsity, scheme) reaches ``accuracy(sparsity, scheme)`` on validation."""
    import mobilekit.bench

    monkeypatch.setattr(budget, "validation_predictions", lambda model, data: _answers(FLOAT))
    monkeypatch.setattr(budget, "_zeros", lambda content: 0.0)

    def convert(cfg, state, calibration):  # the int8 "file" names what was converted
        scheme = stages.qat_scheme(state) if cfg.qat else "PTQ"
        return b"float", json.dumps([cfg.sparsity, scheme]).encode(), []

    monkeypatch.setattr(stages, "convert", convert)
    monkeypatch.setattr(mobilekit.bench, "evaluate_tflite",
                        lambda content, x, y: {"predictions": _answers(accuracy(*json.loads(content)))})
    trained = []

    def compress(cfg, timer, data, state, suffix="", label="", fallback=True, graph=None):
        trained.append(cfg.sparsity)
        before = stages.Trained(state.model, state.accuracy, masks={"conv": 1} if cfg.sparsity else {})
        after = stages.Trained(state.model, state.accuracy, before.masks) if cfg.spec.qat else before
        return before, after

    cfg = BuildConfig(max_accuracy_drop=budget_points, **overrides)
    data = Data(None, None, x_val=np.zeros((IMAGES, 1)), y_val=np.zeros(IMAGES, np.int64))
    timer = _Timer()
    s = SEARCH(cfg, timer, data, stages.Trained(_Model(), {}), None, compress)
    return s, trained, timer


def _tried(section):
    return [(c["sparsity"], c["scheme"]) for c in section["candidates"]]


def test_the_recipe_as_asked_ships_when_it_meets_the_budget(monkeypatch):
    s, trained, timer = _search(monkeypatch, lambda sp, scheme: FLOAT - 0.005)
    chosen, section = s.run()
    assert trained == [0.5] and _tried(section) == [(0.5, "PQAT")]
    assert section["met"] and chosen.sparsity == 0.5 and section["chosen"]["drop_points"] == pytest.approx(0.5)
    assert timer.stages == ["convert"]  # one conversion: the file the build ships


def test_post_training_quantization_of_the_pruned_model_is_tried_before_less_sparsity(monkeypatch):
    s, trained, _ = _search(monkeypatch, lambda sp, scheme: FLOAT - (0.03 if scheme == "PQAT" else 0.0))
    chosen, section = s.run()
    assert trained == [0.5] and _tried(section) == [(0.5, "PQAT"), (0.5, "PTQ")]
    assert (chosen.sparsity, chosen.scheme) == (0.5, "PTQ")


def test_a_bisection_between_the_floor_and_the_ceiling_finds_the_most_sparsity_that_meets(monkeypatch):
    # Loses 4 points per 10% sparsity past 0.3: 0.25 meets, 0.375 does not.
    s, trained, timer = _search(monkeypatch, lambda sp, scheme: FLOAT - max(0.0, sp - 0.3) * 0.4)
    chosen, section = s.run()
    assert trained == [0.5, 0.25, 0.375]  # budget.SEARCH_TRAINED trained candidates
    assert _tried(section) == [(0.5, "PQAT"), (0.5, "PTQ"), (0.0, "PTQ"), (0.25, "PQAT"), (0.375, "PQAT"),
                               (0.375, "PTQ")]
    assert section["met"] and (chosen.sparsity, chosen.scheme) == (0.25, "PQAT")
    assert [c["meets"] for c in section["candidates"]] == [False, False, True, True, False, False]
    assert timer.stages[:2] == ["convert", "convert_2"]  # each candidate's stages under their own names


def test_when_the_floor_misses_nothing_between_is_trained_and_the_least_lossy_ships_with_a_warning(monkeypatch):
    losses = {"PQAT": 0.045, "QAT": 0.02, "PTQ": 0.04}
    s, trained, _ = _search(monkeypatch, lambda sp, scheme: FLOAT - losses[scheme] - sp * 0.01)
    chosen, section = s.run()
    assert trained == [0.5, 0.0]  # the ceiling, then the floor with QAT; no bisection
    assert _tried(section) == [(0.5, "PQAT"), (0.5, "PTQ"), (0.0, "PTQ"), (0.0, "QAT")]  # dense PTQ judged once
    assert not section["met"] and (chosen.sparsity, chosen.scheme) == (0.0, "QAT")


def test_qat_that_lost_to_post_training_quantization_at_the_ceiling_is_not_trained_again(monkeypatch):
    s, trained, _ = _search(monkeypatch, lambda sp, scheme: FLOAT - (0.2 if scheme == "PQAT" else
                                                                    max(0.0, sp - 0.3) * 0.4))
    chosen, section = s.run()
    assert _tried(section) == [(0.5, "PQAT"), (0.5, "PTQ"), (0.0, "PTQ"), (0.25, "PTQ"), (0.375, "PTQ")]
    assert section["qat_skipped"].startswith("PQAT lost 12.0 points to post-training quantization")
    assert (chosen.sparsity, chosen.scheme) == (0.25, "PTQ") and trained == [0.5, 0.25, 0.375]


def test_search_warns_or_refuses_when_the_budget_cannot_be_met(monkeypatch):
    s, _, timer = _search(monkeypatch, lambda sp, scheme: 0.5)
    monkeypatch.setattr(budget, "Search", lambda *a: s)
    state, files, section = budget.search(s.cfg, timer, s.data, None, None, None)
    assert section["warning"].startswith("accuracy budget NOT met: no candidate of 4 kept")
    assert f"{section['chosen']['drop_points']:.2f}" in section["warning"]
    s2, _, _ = _search(monkeypatch, lambda sp, scheme: 0.5, strict_budget=True)
    monkeypatch.setattr(budget, "Search", lambda *a: s2)
    with pytest.raises(MobilekitError, match=r"refused \(--strict-budget\): accuracy budget NOT met"):
        budget.search(s2.cfg, timer, s2.data, None, None, None)


def test_no_qat_searches_post_training_quantization_only(monkeypatch):
    s, trained, _ = _search(monkeypatch, lambda sp, scheme: FLOAT - sp * 0.05, qat=False)
    chosen, section = s.run()
    assert {scheme for _, scheme in _tried(section)} == {"PTQ"}
    assert chosen.sparsity == 0.125 and section["met"]


def test_the_drop_s_standard_error_counts_only_the_images_answered_differently():
    right = np.array([True] * 80 + [False] * 20)
    assert budget.drop_error(right, right) == 0.0
    int8 = right.copy()
    int8[:4] = False  # 4 lost, none gained: drop 4 points
    assert budget.drop_error(right, int8) == pytest.approx(100 * np.sqrt(4 - 16 / 100) / 100)
    int8[80:84] = True  # and 4 gained: drop 0, 8 discordant
    assert budget.drop_error(right, int8) == pytest.approx(100 * np.sqrt(8) / 100)


def test_budget_settings():
    assert BuildConfig().max_accuracy_drop == 1.0  # the default recipe prunes by magnitude
    assert BuildConfig(recipe="deep-compression").max_accuracy_drop == 1.0
    assert BuildConfig(sparsity=0.5).max_accuracy_drop is None  # a fixed sparsity without a budget: as asked
    assert BuildConfig(sparsity=0.6, max_accuracy_drop=2).max_accuracy_drop == 2.0  # 0.6 is the ceiling
    assert BuildConfig(recipe="int8-qat").max_accuracy_drop is None
    assert BuildConfig(arch="mobilenet_v2", weights="imagenet").max_accuracy_drop is None  # nothing trained
    c = BuildConfig()
    assert BuildConfig(**c.to_dict()) == c  # a report's config reads back as the same build
    for kw, words in ((dict(max_accuracy_drop=-1), "max_accuracy_drop must be a number in [0, 100]"),
                      (dict(max_accuracy_drop=101), "received max_accuracy_drop=101"),
                      (dict(max_accuracy_drop=1, recipe="int8-ptq"), "recipe 'int8-ptq' has none to vary"),
                      (dict(max_accuracy_drop=1, recipe="prune-2of4-int8"), "has none to vary"),
                      (dict(max_accuracy_drop=1, sparsity=0), "with sparsity=0 has none to vary"),
                      (dict(strict_budget=True, recipe="int8-qat"), "strict_budget=True needs an accuracy budget"),
                      (dict(validation_split=0.9), "validation_split must be a number in (0, 0.5]")):
        with pytest.raises(MobilekitError, match=words.replace("[", r"\[").replace("(", r"\(")):
            BuildConfig(**kw)


def test_the_validation_split_is_stratified_seeded_and_out_of_training():
    from mobilekit.data import Dataset, to_float

    y = np.repeat(np.arange(3), [50, 20, 2])
    x = np.arange(len(y), dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    ds = Dataset("toy", x, y, x[:5], y[:5], ["a", "b", "c"], "toy")
    cfg = BuildConfig(validation_split=0.2)
    held = budget.hold_out(cfg, Data(ds, to_float(x[:5])), _Timer.console)
    assert np.bincount(held.y_val, minlength=3).tolist() == [10, 4, 1]  # at least one of a class of two
    assert "judged on 15 validation images: one image is 6.7 points" in held.ds.extra["warnings"][0]
    assert len(held.ds.y_train) + len(held.y_val) == len(y)
    train_ids = set(held.ds.x_train[:, 0, 0, 0].tolist())
    val_ids = set(np.round(held.x_val[:, 0, 0, 0] * 255).astype(int).tolist())
    assert not train_ids & val_ids and len(val_ids) == 15
    again = budget.hold_out(cfg, Data(ds, to_float(x[:5])), _Timer.console)
    assert np.array_equal(again.y_val, held.y_val) and np.array_equal(again.x_val, held.x_val)


def _tiny(tmp_path, name, **kw):
    return BuildConfig(arch="squeezenet", input_size=32, limit_train=1000, limit_test=200, epochs=0.3,
                       prune_epochs=0.3, qat_epochs=0.1, min_stage_steps=0, latency_runs=5, latency_warmup=1,
                       out=str(tmp_path / name), **kw)


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.extended
def test_a_build_judges_its_budget_on_the_validation_split_it_never_trained_on(tmp_path, monkeypatch):
    """The default recipe's build with a budget it meets (100 points: the recipe as asked, one candidate); then a
    planted fault (a float model right on every validation image) that no candidate can meet: every candidate the
    order allows, each from the float weights (the dense ones' files hold no pruned zeros), the least lossy written
    with a warning in the report, report.md and on the console; with --strict-budget, nothing written."""
    from mobilekit.data import load_fashion_mnist
    from mobilekit.pipeline import build

    labels = load_fashion_mnist(32, 3, limit_train=1000, limit_test=1).y_train
    held = sum(max(1, int(round(n * 0.1))) for n in np.bincount(labels))
    report = build(_tiny(tmp_path, "met", max_accuracy_drop=100))
    b = report["budget"]
    assert b["met"] and b["validation_images"] == held and len(b["candidates"]) == 1
    assert (b["chosen"]["sparsity"], b["chosen"]["scheme"]) == (0.5, "PQAT") and b["chosen"]["int8_zeros"] > 0.45
    assert report["throughput"]["train_float"]["train_images"] == 128 * round(0.3 * ((1000 - held) // 128) or 1)
    assert "accuracy budget | 100 point(s) on" in (tmp_path / "met" / "report.md").read_text()

    monkeypatch.setattr(budget, "validation_predictions", lambda model, data: data.y_val)  # always right
    report = build(_tiny(tmp_path, "missed"))
    b = report["budget"]
    tried = [(c["sparsity"], c["scheme"]) for c in b["candidates"]]
    assert tried == [(0.5, "PQAT"), (0.5, "PTQ"), (0.0, "PTQ"), (0.0, "QAT")] and not b["met"]
    zeros = [c["int8_zeros"] for c in b["candidates"]]
    assert min(zeros[:2]) > 0.45 and max(zeros[2:]) < 0.05, zeros  # the floor starts from the float weights again
    assert report["warnings"][0].startswith("accuracy budget NOT met: no candidate of 4 kept the int8 file within 1")
    assert "**Warning: accuracy budget NOT met" in (tmp_path / "missed" / "report.md").read_text()
    assert report["sparsity"]["target"] == b["chosen"]["sparsity"]
    assert set(report["stage_seconds"]) >= {"prune", "qat", "convert", "qat_2", "convert_4"}

    with pytest.raises(MobilekitError, match=r"^refused \(--strict-budget\): accuracy budget NOT met"):
        build(_tiny(tmp_path, "strict", strict_budget=True))
    assert not (tmp_path / "strict").exists()


def test_compression_stages_after_transfer_learning_take_the_fine_tune_phases_steps():
    from dataclasses import replace

    from mobilekit.pipeline.stages import budget_note, min_steps, tuned_steps

    tuned = BuildConfig(arch="mobilenet_v2", weights="imagenet", data="folder", batch_size=32)  # 5 epochs of fine-tune
    assert tuned_steps(tuned, 900) == 5 * 28 and min_steps(tuned, "qat", 900) == 140  # 900 // 32 = 28 a pass
    assert min_steps(tuned, "prune", 320) == 100  # 50 steps of fine-tune: the small-data floor is more
    note = budget_note(tuned, "qat", tuned.qat_epochs, 900)
    assert note.endswith("ran the minimum 140 (the fine-tune phase's, so compression does not undo it; "
                         "--min-stage-steps)"), note
    head_only = replace(tuned, fine_tune="none", head_epochs=8.0)
    assert min_steps(head_only, "qat", 900) == 8 * 28  # the head phase was the last that trained
    assert min_steps(replace(tuned, min_stage_steps=0), "prune", 900) == 1  # asked: the epochs as given
    scratch = BuildConfig(batch_size=32)
    assert tuned_steps(scratch, 900) == 0 and min_steps(scratch, "prune", 9000) == 100


@pytest.mark.slow  # trains (a few steps): the full lane (CI) runs it
def test_later_candidates_reuse_the_traced_pruning_graph_and_train_as_a_fresh_one_does():
    """A budget's second candidate prunes the same float model to another sparsity in the first one's wrapped,
    compiled model: no new trace, the sparsity asked, and the same weights as a pruning stage built afresh."""
    from mobilekit.backend import keras, tf
    from mobilekit.data import Dataset, to_float

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    y = (x[..., 0].mean(axis=(1, 2)) > 127).astype(np.int64)
    ds = Dataset("toy", x, y, x[:16], y[:16], ["dark", "light"], "test")
    data = Data(ds, to_float(x[:16]))
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    hidden = keras.layers.Conv2D(32, 3, activation="relu")(hidden)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(hidden))
    model = keras.Model(inputs, outputs)
    start = model.get_weights()

    def cfg(sparsity):
        return BuildConfig(arch="squeezenet", sparsity=sparsity, batch_size=16, prune_epochs=5, min_stage_steps=0)

    def pruned(sparsity, graph):
        model.set_weights(start)
        return [w.copy() for w in stages.prune(cfg(sparsity), data, stages.Trained(model, {}), graph).model
                .get_weights()]

    graph = stages.PruneGraph()
    pruned(0.5, graph)
    traces = graph.model.train_function.experimental_get_tracing_count()
    reused = pruned(0.25, graph)
    assert graph.reused == 1 and graph.model.train_function.experimental_get_tracing_count() == traces == 1
    kernels = [w for w in reused if w.ndim > 1]
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert 0.24 < zeros < 0.26, zeros
    fresh = pruned(0.25, None)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(reused, fresh))
