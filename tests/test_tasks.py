"""The task seam (mobilekit.tasks): what depends on what a model predicts sits behind one interface chosen by
the arch, and the build goes through it for every one of those parts."""

import inspect

import pytest

from mobilekit import archs, tasks
from mobilekit.archs import registry
from mobilekit.errors import MobilekitError
from mobilekit.pipeline import BuildConfig, build
from mobilekit.tasks.classification import Classification

PROTOCOL_METHODS = sorted(n for n, v in vars(tasks.Task).items() if callable(v) and not n.startswith("_"))


def test_every_arch_gets_its_task():
    from mobilekit.tasks.detection import Detection

    assert tasks.names() == ["classification", "detection"]
    for arch in archs.list_archs() + ["squeezenet"]:
        assert archs.task_of(arch) == "classification"
        assert isinstance(tasks.of(arch), Classification)
    assert tasks.of("squeezenet1_1") is tasks.of("mobilenet_v2")  # one stateless instance
    assert archs.list_archs(task="detection") == ["squeezedet"] and "squeezedet" not in archs.list_archs()
    assert isinstance(tasks.of("squeezedet"), Detection)
    assert set(archs.list_archs(task=None)) == {*archs.list_archs(), "squeezedet"}


def test_an_arch_of_a_task_the_kit_lacks_is_refused_in_one_line(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "segmenter_probe", lambda **kw: None)
    monkeypatch.setitem(registry._TASKS, "segmenter_probe", "segmentation")
    assert archs.task_of("segmenter_probe") == "segmentation"
    with pytest.raises(MobilekitError, match=r"^arch 'segmenter_probe' is a 'segmentation' model; mobilekit builds "
                                             r"classification, detection models$"):
        tasks.of("segmenter_probe")


def test_each_task_implements_the_whole_protocol():
    from mobilekit.tasks.detection import Detection

    assert PROTOCOL_METHODS == ["app_files", "check_kept", "create_model", "evaluate", "keras_metric", "labels",
                                "load", "loss", "report_fields", "train_dataset", "warnings", "with_metadata"]
    for name in PROTOCOL_METHODS:
        wanted = list(inspect.signature(getattr(tasks.Task, name)).parameters)
        for task in (Classification, Detection):
            assert list(inspect.signature(getattr(task, name)).parameters) == wanted, (task, name)


class Recording(Classification):
    """Classification that notes every call the build makes through the seam and renames the labels file."""

    def __init__(self):
        self.calls = []
        for name in PROTOCOL_METHODS:
            method = getattr(super(), name)
            setattr(self, name, self._noting(name, method))

    def _noting(self, name, method):
        def call(*args, **kw):
            self.calls.append(name)
            out = method(*args, **kw)
            return {"labels": ("classes.txt", out["labels"][1])} if name == "app_files" else out
        return call


@pytest.mark.slow
@pytest.mark.needs_data
def test_a_build_reaches_every_task_specific_part_through_the_seam(monkeypatch, tmp_path):
    recording = Recording()
    monkeypatch.setattr(tasks, "_tasks", lambda: {"classification": recording})
    report = build(BuildConfig(arch="squeezenet", input_size=32, limit_train=512, limit_test=200, epochs=0.5,
                               recipe="int8-ptq", latency_runs=5, latency_warmup=1, batch_size=64,
                               out=str(tmp_path / "b")))
    assert set(recording.calls) == set(PROTOCOL_METHODS)
    order = [recording.calls.index(n) for n in ("load", "create_model", "loss", "with_metadata", "evaluate",
                                                 "check_kept")]
    assert order == sorted(order)
    assert report["files"]["labels"] == "classes.txt"  # the app's files are the task's
    assert (tmp_path / "b" / "classes.txt").read_text().splitlines()[9] == "Ankle boot"
    assert not (tmp_path / "b" / "labels.txt").exists()
    assert report["num_classes"] == 10 and 0.0 <= report["accuracy"]["tflite_int8"] <= 1.0
