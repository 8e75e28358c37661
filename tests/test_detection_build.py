"""`mobilekit build --arch squeezedet`: the detection task through the whole build, on the embedded set and on a
user's folder in another layout; the file is int8 up to TFLite's detection post-processing, its anchors are the
report's, and the report holds mAP float against int8."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekit.pipeline import BuildConfig, build

pytestmark = [pytest.mark.slow, pytest.mark.needs_data,
              pytest.mark.xdist_group("detector")]  # one worker builds the module's default detector once


def _tiny(out, **kw):
    settings = dict(arch="squeezedet", limit_train=240, limit_test=40, epochs=1, prune_epochs=0.3, qat_epochs=0.3,
                    min_stage_steps=0, latency_runs=5, latency_warmup=1, out=str(out))
    return BuildConfig(**{**settings, **kw})


@pytest.fixture(scope="module")
def default_build(tmp_path_factory):
    """The default detector build, small: (its report, its folder)."""
    out = tmp_path_factory.mktemp("detector") / "b"
    return build(_tiny(out)), out


def test_the_default_detector_build_writes_the_detector_contract(default_build):
    from mobilekit.app_metadata import read
    from mobilekit.detection.postprocess import POSTPROCESS_OP, detector_problems
    from mobilekit.tflite_file import TfliteFile

    report, out = default_build
    acc = report["accuracy"]
    assert acc["metric"] == "mAP@0.5" and acc["test_images"] == 40
    assert all(0.0 <= acc[k] <= 1.0 for k in ("keras_float", "keras_pruned", "keras_qat", "tflite_int8"))
    d = acc["detection"]
    assert d["grid"] == [7, 7] and d["anchors_per_cell"] == 9 and len(d["anchor_shapes"]) == 9
    assert (d["nms_iou"], d["max_detections"], d["test_images"]) == (0.4, 100, 40)
    assert set(d["per_class"]) == set(report["classes"]) and len(report["classes"]) == 10

    content = (out / "squeezedet.tflite").read_bytes()
    f = TfliteFile(content)
    assert detector_problems(content) == [] and [op.name for op in f.ops].count(POSTPROCESS_OP) == 1
    assert f.inputs[0].dtype == "UINT8" and report["app"]["io"]["plain_pixel"] is True
    op = next(op for op in f.ops if op.name == POSTPROCESS_OP)
    anchors = f.tensors[op.inputs[2]].data.reshape(-1, 4)  # the op's anchors, as stored in the file
    written = np.loadtxt(out / "anchors.txt", dtype=np.float32).reshape(-1, 4)
    assert anchors.shape == (7 * 7 * 9, 4)
    np.testing.assert_allclose(written, anchors, atol=1e-6)
    assert report["sparsity"]["int8_weights"] > 0.45
    assert (out / "labels.txt").read_text().splitlines() == report["classes"]
    assert [t.index for t in f.outputs] == list(op.outputs)  # listed in the op's order, as the metadata names them
    metadata = read(f)
    assert metadata["labels"] == report["classes"] and metadata["normalization"] == {"mean": [0.0], "std": [255.0]}
    assert report["app"]["runtimes"]["MediaPipe Tasks ObjectDetector"] == "yes, class names from its 10 labels"
    assert (out / "precision_recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| mAP@0.5 int8 .tflite | " in md and "## Per-class AP of the int8 file" in md
    assert "TFLite_Detection_PostProcess" in md


@pytest.mark.needs_jdk
@pytest.mark.extended
def test_a_yolo_folder_builds_with_its_own_class_names_a_held_out_test_split_and_raw_outputs(tmp_path):
    """A user's YOLO folder, --raw-outputs and --anchors-per-cell 5: fully int8, the two int8 outputs the app decodes
    (checked against the report's anchors and the numpy decode), and the report says the app post-processes."""
    from mobilekit.detection.embedded import make_split
    from mobilekit.detection.formats import write_detection_set
    from mobilekit.detection.postprocess import raw_outputs_on
    from mobilekit.tflite_file import TfliteFile

    ds = make_split(tmp_path / "made", "train", 150, seed=3)
    ds.class_names = [f"thing{n}" for n in range(len(ds.class_names))]
    folder = write_detection_set(ds, tmp_path / "yolo", "yolo")
    report = build(_tiny(tmp_path / "b", data=str(folder), recipe="int8-ptq", limit_train=None, limit_test=None,
                         raw_outputs=True, arch_kwargs={"anchors_per_cell": 5}))
    assert report["classes"] == ds.class_names
    assert report["accuracy"]["test_images"] == 30  # 20% of 150, seeded
    d = report["accuracy"]["detection"]
    assert d["test_boxes"] > 0 and d["anchors_per_cell"] == 5 and d["post_processing"].startswith("the app's")
    content = (tmp_path / "b" / "squeezedet.tflite").read_bytes()
    f = TfliteFile(content)
    assert f.float_problems() == [] and "CUSTOM:TFLite_Detection_PostProcess" not in {op.name for op in f.ops}
    assert sorted(t.shape for t in f.outputs) == [(1, 7 * 7 * 5, 4), (1, 7 * 7 * 5, 10)]
    assert {t.dtype for t in f.outputs} == {"INT8"}
    deltas, scores = raw_outputs_on(content, np.zeros((2, 128, 128, 3), np.uint8))
    assert deltas.shape == (2, 245, 4) and scores.shape == (2, 245, 10) and 0 <= scores.min() <= scores.max() <= 1
    assert len((tmp_path / "b" / "anchors.txt").read_text().splitlines()) == 245
    assert "the app's (--raw-outputs): yc = ty / 10" in (tmp_path / "b" / "report.md").read_text()
    assert _java_finds_what_python_finds(tmp_path / "b", tmp_path / "java", raw=True) >= 100  # NMS in Java as numpy


@pytest.mark.parametrize(("layout", "test_layout", "size"), [("voc", "voc", 128), ("kitti", "coco", (96, 160))])
@pytest.mark.extended
def test_a_folder_in_each_other_layout_builds_end_to_end(layout, test_layout, size, tmp_path):
    """Pascal VOC and KITTI training folders with --test-data folders in VOC and COCO layout (YOLO's is above, COCO
    is the embedded set's), small: read by their layouts, their class names in labels.txt, every test image
    evaluated, the file int8 up to its post-processing. The KITTI build is wide (--input-size 96x160, as KITTI's
    road scenes): its grid has more columns than rows, and the file, the anchors and the app's preprocessing say
    so."""
    from mobilekit.detection.embedded import make_split
    from mobilekit.detection.formats import write_detection_set
    from mobilekit.detection.postprocess import detector_problems
    from mobilekit.tflite_file import TfliteFile

    names = [f"kind_{n}" for n in range(10)]
    folders = {}
    for split, count, kind in (("train", 80, layout), ("test", 16, test_layout)):
        ds = make_split(tmp_path / f"made_{split}", split, count, seed=4)
        ds.class_names = names
        folders[split] = write_detection_set(ds, tmp_path / f"{kind}_{split}", kind)
    report = build(_tiny(tmp_path / "b", data=str(folders["train"]), test_data=str(folders["test"]),
                         recipe="int8-ptq", epochs=0.5, limit_train=None, limit_test=None, input_size=size))
    assert report["classes"] == names and report["accuracy"]["test_images"] == 16
    d = report["accuracy"]["detection"]
    assert d["test_boxes"] > 16 and set(d["per_class"]) <= set(names)
    assert (tmp_path / "b" / "labels.txt").read_text().splitlines() == names
    content = (tmp_path / "b" / "squeezedet.tflite").read_bytes()
    assert detector_problems(content) == []
    h, w = (size, size) if isinstance(size, int) else size
    assert d["grid"] == {128: [7, 7], 96: [5, 9]}[h]  # SqueezeNet 1.1's valid stride-16 map: 5 at 96, 9 at 160
    assert TfliteFile(content).inputs[0].shape == (1, h, w, 3) and report["preprocessing"]["size"] == [h, w]
    assert report["config"]["input_size"] == (size if isinstance(size, int) else list(size))
    assert report["accuracy"]["dataset"] == f"{folders['train']} (test: {folders['test']})"


@pytest.mark.extended
def test_a_pretrained_backbone_is_fine_tuned_under_the_same_head(tmp_path):
    """--backbone mobilenet_v2 --weights imagenet: the backbone starts from the ported ImageNet weights (the
    stride-16 features, 8 x 8 cells at 128 px), the head is trained alone first, then everything; the report says
    where the weights came from and the file is int8 up to its post-processing. (EfficientNet-Lite0's port into the
    same head: tests/test_detection_train.py.)"""
    from mobilekit.detection.postprocess import detector_problems

    backbone = "mobilenet_v2"
    report = build(_tiny(tmp_path / "b", weights="imagenet", arch_kwargs={"backbone": backbone}, limit_train=64,
                         limit_test=16, head_epochs=0.5, epochs=0.5, recipe="int8-ptq"))
    assert report["transfer"]["weights"]["weights"] == "imagenet"
    phases = report["transfer"]["phases"]
    assert [p["phase"] for p in phases] == ["head", "fine_tune"]
    head = set(phases[0]["trainable_layers"])
    assert {"convdet_deltas", "convdet_scores", "fire10_squeeze1x1", "fire11_expand3x3"} <= head
    assert not any(name.startswith(("conv1", "block_")) for name in head)  # the backbone stays frozen at first
    assert any(name.startswith("block_") for name in phases[1]["trainable_layers"])
    assert report["metaparameters"]["backbone"] == backbone and report["metaparameters"]["normalization"]
    assert report["accuracy"]["detection"]["grid"] == [8, 8]
    assert detector_problems((tmp_path / "b" / "squeezedet.tflite").read_bytes()) == []


@pytest.mark.needs_runtimes
def test_mediapipe_s_object_detector_finds_what_the_kit_finds(default_build, tmp_path):
    """MediaPipe Tasks' ObjectDetector (the C++ core Android's tasks-vision runs) opens the default detector file and
    reports, on the test images, the detections of the kit's own LiteRT run: the same classes and names, the same
    scores, each box's origin and size within a pixel (MediaPipe truncates them to whole pixels)."""
    import json
    import subprocess
    from pathlib import Path

    from conftest import RUNTIMES_PYTHON
    from mobilekit.detection.embedded import make_split
    from mobilekit.detection.postprocess import detections_on
    from mobilekit.tasks.detection import decoded_images

    report, out = default_build
    model = out / "squeezedet.tflite"
    images = decoded_images(make_split(tmp_path / "made", "test", 48, seed=5).items, 128)
    np.save(tmp_path / "images.npy", images)
    script = Path(__file__).parent / "runtimes" / "detect.py"
    result = subprocess.run([str(RUNTIMES_PYTHON), str(script), str(model), str(tmp_path / "images.npy")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert doc["version"] == "1.2.2" and len(doc["results"]) == len(images)
    compared = 0
    for ours, theirs in zip(detections_on(model.read_bytes(), images), doc["results"]):
        assert len(theirs) == len(ours["scores"])
        for (x, y, w, h, index, name, score), box, cls, conf in zip(theirs, ours["boxes"], ours["classes"],
                                                                     ours["scores"]):
            assert name == report["classes"][int(cls)] and index in (None, int(cls))  # MediaPipe 1.2.2 leaves it None
            assert score == pytest.approx(float(conf), abs=1e-6)
            ymin, xmin, ymax, xmax = np.clip(box, 0, 1) * 128
            # MediaPipe truncates the origin and the size to whole pixels, each: within a pixel of ours
            assert max(abs(x - xmin), abs(y - ymin), abs(w - (xmax - xmin)), abs(h - (ymax - ymin))) < 1.0
            compared += 1
    assert compared >= 10


def _java_finds_what_python_finds(build_dir, tmp_path, raw: bool) -> int:
    """The exported detector through android_demo's Java core on photos of another size (192 x 160, so the scaling
    to the image's pixels is exercised): Java's input bytes equal the kit's, and its boxes, decoded from the file's
    outputs (the op's four, or with ``raw`` the two int8 tensors decoded and suppressed in Java), are the kit's:
    same classes and scores, each box within a pixel. A raw file is compared with model.json's score threshold at
    0.001, so a briefly trained model still gives the NMS up to its 100 boxes to do. Returns the detections
    compared."""
    import json
    import subprocess

    from PIL import Image

    from mobilekit.detection.boxes import to_pixels
    from mobilekit.detection.embedded import make_split
    from mobilekit.detection.postprocess import PostProcess, detections_on, raw_outputs_on, reference
    from mobilekit.export_android import export_android
    from mobilekit.litert import make_interpreter
    from mobilekit.tasks.detection import decoded_images
    from test_android_demo import compile_core

    assets = tmp_path / "assets"
    doc = export_android(build_dir, assets)
    names = [o["name"] for o in doc["outputs"]]  # in the file's output order
    assert doc["task"] == "detection" and sorted(names) == (
        ["class_scores", "deltas"] if raw else ["boxes", "classes", "count", "scores"])
    if raw:
        doc["detection"]["score_threshold"] = 0.001
        (assets / "model.json").write_text(json.dumps(doc))
    labels_txt = (assets / "labels.txt").read_text().splitlines()
    classes = compile_core(tmp_path / "core")
    width, height = 192, 160
    items = make_split(tmp_path / "made", "test", 48, seed=9).items
    for item in items:
        Image.open(item.image).convert("RGB").resize((width, height)).save(item.image)
    content = (assets / doc["model"]).read_bytes()
    images = decoded_images(items, 128)
    run = subprocess.run(["java", "-cp", str(classes), "dev.mobilekit.core.Preprocess", str(assets / "model.json"),
                          *[a for n, item in enumerate(items) for a in (str(item.image), str(tmp_path / f"{n}.in"))]],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert all((tmp_path / f"{n}.in").read_bytes() == images[n].tobytes() for n in range(len(items)))
    interpreter = make_interpreter(content)
    anchors = np.loadtxt(assets / "anchors.txt", dtype=np.float32).reshape(-1, 4) if raw else None
    post = PostProcess(doc["num_classes"], score_threshold=doc["detection"]["score_threshold"])
    ours = raw_outputs_on(content, images) if raw else detections_on(content, images)  # dequantized as an app does
    compared = 0
    for n, image in enumerate(images):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        bins = []
        for k, detail in enumerate(interpreter.get_output_details()):  # the file's output order, model.json's
            bins.append(tmp_path / f"{n}.out{k}")
            bins[-1].write_bytes(interpreter.get_tensor(detail["index"]).tobytes())
        run = subprocess.run(["java", "-cp", str(classes), "dev.mobilekit.core.Detections", str(assets / "model.json"),
                              str(assets / "labels.txt"), str(assets / "anchors.txt") if raw else "-", str(width),
                              str(height), *map(str, bins)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        java = [line.split("\t") for line in run.stdout.splitlines()]
        if raw:  # decoded and suppressed by the kit's numpy reference
            boxes, labels, conf = reference(ours[0][n], ours[1][n], anchors, post)
        else:
            boxes, labels, conf = ours[n]["boxes"], ours[n]["classes"], ours[n]["scores"]
        pixels = to_pixels(np.clip(boxes, 0, 1), width, height)
        assert len(java) == len(labels), n
        for row, box, label, score in zip(java, pixels, labels, conf):
            assert int(row[1]) == int(label) and row[7] == labels_txt[int(label)]
            assert float(row[2]) == pytest.approx(float(score), abs=1e-6)
            assert np.abs(np.asarray(row[3:7], np.float64) - box).max() < 1.0
            compared += 1
    return compared


@pytest.mark.needs_jdk
def test_the_android_core_draws_the_boxes_the_kit_finds(default_build, tmp_path):
    _, out = default_build
    assert _java_finds_what_python_finds(out, tmp_path, raw=False) >= 10  # a briefly trained model: few boxes
