"""Object-detection datasets in the four layouts people bring, read into one record and written back.

=======  ==================================================  ===========================================
layout   what the folder holds                               boxes as the files store them
=======  ==================================================  ===========================================
COCO     ``images/`` + one annotations ``.json`` (at the     ``bbox: [x, y, width, height]`` pixels
         top or in ``annotations/``)
VOC      ``JPEGImages/`` + ``Annotations/*.xml``             ``xmin ymin xmax ymax``: 1-based pixels,
                                                             both ends included
YOLO     ``images/`` + ``labels/*.txt`` (sub-folders such    ``class cx cy w h``, normalised to the image
         as ``train/`` mirrored), classes named by
         ``data.yaml`` (``names``) or ``classes.txt``
KITTI    ``image_2/`` + ``label_2/*.txt``                    ``type trunc occl alpha x1 y1 x2 y2 ...``:
                                                             0-based pixels (``DontCare`` skipped)
=======  ==================================================  ===========================================

Every layout is read into a :class:`DetectionSet`: boxes as continuous pixel coordinates ``(xmin, ymin, xmax,
ymax)`` of the image as a gallery shows it (a box over pixel columns 0..9 is ``[0, 10)``), class indices into
``class_names`` (the order of the model's outputs and labels.txt). Class names come from the annotations: COCO's
categories by id, YOLO's names by index, VOC's and KITTI's names sorted. Images without a box are kept as negatives
and counted. Annotation files are untrusted: JSON and YAML are parsed as data (``yaml.safe_load``), XML without
entities or DTDs (defusedxml), images by their header only; anything wrong is one :class:`MobilekitError` line
naming the file and the value.

Example: ``read_detection_set("data/pets").summary()`` -> ``"VOC: 120 images (3 without boxes), 311 boxes, 2
classes"``.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mobilekit.errors import MobilekitError
from mobilekit.json_files import read_json

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LAYOUTS = ("coco", "voc", "yolo", "kitti")
LAYOUT_NAMES = {"coco": "COCO", "voc": "Pascal VOC", "yolo": "YOLO", "kitti": "KITTI"}
# How far a box may reach past the image before it is refused, in pixels: annotation tools write the last pixel's
# far edge or index (VOC's 1-based ends, an x2 of width + 1). Within it the box is clipped to the image.
EDGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class Labelled:
    """One image and its boxes: ``boxes`` (n, 4) float32 pixels ``(xmin, ymin, xmax, ymax)``, ``labels`` (n,)
    int32 indices into the set's class names, ``ignore`` (n,) bool: boxes an evaluation ignores (COCO
    ``iscrowd``, VOC ``difficult``)."""

    image: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray


@dataclass
class DetectionSet:
    """A detection dataset as read (:func:`read_detection_set`)."""

    layout: str
    root: Path
    class_names: list[str]
    items: list[Labelled] = field(default_factory=list)

    @property
    def negatives(self) -> int:
        """Images without any box."""
        return sum(1 for item in self.items if not len(item.boxes))

    @property
    def num_boxes(self) -> int:
        return sum(len(item.boxes) for item in self.items)

    def boxes_per_class(self) -> dict[str, int]:
        counts = np.bincount(np.concatenate([item.labels for item in self.items] or [np.zeros(0, np.int32)]),
                             minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts)}

    def summary(self) -> str:
        return (f"{LAYOUT_NAMES[self.layout]}: {len(self.items)} images ({self.negatives} without boxes), "
                f"{self.num_boxes} boxes, {len(self.class_names)} classes")


# --- layout --------------------------------------------------------------------------------------------------


def _coco_json(root: Path) -> list[Path]:
    return sorted([*root.glob("*.json"), *(root / "annotations").glob("*.json")])


def looks_like(root: Path) -> list[str]:
    found = []
    if (root / "images").is_dir() and _coco_json(root):
        found.append("coco")
    if (root / "JPEGImages").is_dir() or (root / "Annotations").is_dir():
        found.append("voc")
    if (root / "labels").is_dir():
        found.append("yolo")
    if (root / "image_2").is_dir() or (root / "label_2").is_dir():
        found.append("kitti")
    return found


EXPECTED = ("COCO (images/ + one annotations .json), Pascal VOC (JPEGImages/ + Annotations/*.xml), YOLO (images/ + "
            "labels/*.txt + data.yaml or classes.txt) or KITTI (image_2/ + label_2/*.txt)")


def folder_files(root: str | Path) -> list[tuple[str, bytes]]:
    """Every regular file under the detection folder ``root`` (its layout checked first) as (path relative to
    ``root``, bytes), sorted: the folder as it travels to a sweep's worker."""
    detect_layout(root)
    root = Path(root)
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()]


def detect_layout(root: str | Path) -> str:
    """The layout of the folder ``root`` (one of LAYOUTS).

    Raises:
        MobilekitError: not a folder, none of the layouts, a classification folder, or more than one layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise MobilekitError(f"detection data {str(root)!r} is not a folder")
    found = looks_like(root)
    if len(found) > 1:
        both = " and ".join(LAYOUT_NAMES[f] for f in found)
        raise MobilekitError(f"detection data {str(root)!r} mixes layouts ({both}); keep one layout per folder")
    if found:
        return found[0]
    subfolders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders and all(any(f.suffix.lower() in IMAGE_SUFFIXES for f in (root / s).iterdir()) for s in subfolders):
        raise MobilekitError(f"{str(root)!r} is a classification folder (one sub-folder of images per class: "
                             f"{', '.join(subfolders[:5])}{', ...' if len(subfolders) > 5 else ''}); a detector needs "
                             f"boxes: {EXPECTED}")
    raise MobilekitError(f"detection data {str(root)!r} is in no layout the kit reads; expected {EXPECTED}")


# --- images --------------------------------------------------------------------------------------------------


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image as a gallery shows it (EXIF orientations 5-8 swap them), from its header, with the
    kit's pixel limit (mobilekit.data.image_header).

    Raises:
        MobilekitError: a missing, unreadable or too large image.
    """
    from mobilekit.data import image_header

    if not path.is_file():
        raise MobilekitError(f"missing image {path}")
    width, height, orientation = image_header(path)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _images_under(folder: Path) -> dict[str, Path]:
    """Images under ``folder`` (recursively) by their path relative to it without the suffix."""
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(folder.rglob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


# --- checks --------------------------------------------------------------------------------------------------


def _item(where: str, image: Path, width: int, height: int, boxes: list, labels: list, names: list[str],
          ignore: list | None = None) -> Labelled:
    """A checked :class:`Labelled`: every box finite, of positive size, inside the image (EDGE_TOLERANCE, then
    clipped)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    for box, label in zip(b, labels):
        shown = "(" + ", ".join(f"{v:g}" for v in box) + f") of {names[label]!r}"
        if not np.all(np.isfinite(box)):
            raise MobilekitError(f"{where}: box {shown} is not finite")
        if box[2] <= box[0] or box[3] <= box[1]:
            raise MobilekitError(f"{where}: box {shown} has zero or negative size")
        if box[0] < -EDGE_TOLERANCE or box[1] < -EDGE_TOLERANCE or box[2] > width + EDGE_TOLERANCE \
                or box[3] > height + EDGE_TOLERANCE:
            raise MobilekitError(f"{where}: box {shown} is outside the {width}x{height} image {image.name}")
    b = np.clip(b, 0, [width, height, width, height])
    keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return Labelled(image, int(width), int(height), b[keep].astype(np.float32),
                    np.asarray(labels, np.int32).reshape(-1)[keep],
                    np.asarray(ignore if ignore is not None else [False] * len(b), bool).reshape(-1)[keep])


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MobilekitError(f"{path}: not UTF-8 text") from None


def _number(where: str, value, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise MobilekitError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(out):
        raise MobilekitError(f"{where}: {what} {value!r} is not finite")
    return out


# --- readers -------------------------------------------------------------------------------------------------


def _paired(root: Path, images: str, labels: str, suffix: str, layout: str) -> tuple[dict[str, Path], list[Path]]:
    """(the images under ``images/`` by stem, the annotation files ``labels/*suffix``) of a VOC or KITTI folder."""
    for name in (images, labels):
        if not (root / name).is_dir():
            raise MobilekitError(f"{layout} data {str(root)!r} has {images if name == labels else labels}/ but no "
                                 f"{name}/")
    files = sorted((root / labels).glob("*" + suffix))
    if not files:
        raise MobilekitError(f"{layout} data {str(root)!r} has no {labels}/*{suffix}")
    return _images_under(root / images), files


def _named_set(layout: str, root: Path, parsed: list, images: dict, used: dict) -> DetectionSet:
    """A VOC or KITTI set from its parsed files ``(path, image, [(class name, box, ignore), ...])``: the class names
    sorted, the images no file names kept as negatives."""
    names = sorted({name for _, _, objects in parsed for name, _, _ in objects})
    items = [_item(path.name, image, *image_size(image), [o[1] for o in objects], [names.index(o[0]) for o in objects],
                   names, [o[2] for o in objects]) for path, image, objects in parsed]
    return DetectionSet(layout, root, names, items + _negatives(images, used, names))


def _claim(path: Path, stem: str, images: dict, used: dict, folder: str) -> None:
    """Record that annotation ``path`` describes image ``stem``; one annotation file per image."""
    if stem not in images:
        raise MobilekitError(f"{path}: names image {stem!r}, not in {folder}")
    if stem in used:
        raise MobilekitError(f"{path}: image {stem!r} is annotated again (first by {used[stem].name})")
    used[stem] = path


def _negatives(images: dict, used: dict, names: list[str]) -> list[Labelled]:
    """The images no annotation file names: kept without boxes (negatives)."""
    return [_item(p.name, p, *image_size(p), [], [], names) for stem, p in images.items() if stem not in used]


def _read_coco(root: Path) -> DetectionSet:
    files = _coco_json(root)
    if len(files) != 1:
        raise MobilekitError(f"COCO data {str(root)!r} has {len(files)} annotation .json files "
                             f"({', '.join(p.name for p in files)}); keep one")
    path = files[0]
    doc = read_json(path, "COCO annotations")  # size and depth limits, duplicate keys refused
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("categories"), list) or not isinstance(doc.get("annotations", []), list):
        raise MobilekitError(f"{path}: not COCO annotations (an object with images, annotations and categories "
                             "lists)")
    if not doc["images"]:
        raise MobilekitError(f"{path}: no images")
    try:
        categories = sorted((int(c["id"]), str(c["name"])) for c in doc["categories"])
        images = {int(i["id"]): (str(i["file_name"]), i.get("width"), i.get("height")) for i in doc["images"]}
    except (KeyError, TypeError, ValueError) as e:
        raise MobilekitError(f"{path}: malformed COCO entry ({type(e).__name__}: {e})") from None
    if not categories:
        raise MobilekitError(f"{path}: no categories")
    names = [name for _, name in categories]
    index = {cid: i for i, (cid, _) in enumerate(categories)}
    per_image: dict[int, list] = {i: [] for i in images}
    for n, a in enumerate(doc.get("annotations", [])):
        where = f"{path.name} annotations[{n}]"
        if not isinstance(a, dict) or not isinstance(a.get("bbox"), list) or len(a["bbox"]) != 4:
            raise MobilekitError(f"{where}: no bbox [x, y, width, height]")
        if a.get("image_id") not in images:
            raise MobilekitError(f"{where}: image_id {a.get('image_id')!r} is not among the images")
        if a.get("category_id") not in index:
            raise MobilekitError(f"{where}: unknown category_id {a.get('category_id')!r} (categories: "
                                 f"{', '.join(str(c) for c, _ in categories)})")
        x, y, w, h = (_number(where, v, "bbox value") for v in a["bbox"])
        per_image[a["image_id"]].append(([x, y, x + w, y + h], index[a["category_id"]], bool(a.get("iscrowd", 0))))
    items = []
    folder = (root / "images").resolve()
    for image_id, (file_name, w, h) in images.items():
        image = root / "images" / file_name
        if not image.resolve().is_relative_to(folder):
            raise MobilekitError(f"{path.name}: image {file_name!r} is outside images/")
        width, height = image_size(image)
        if w is not None and h is not None and (int(w), int(h)) != (width, height):
            raise MobilekitError(f"{path.name}: image {file_name!r} is {w}x{h} in the annotations but {width}x"
                                 f"{height} on disk")
        found = per_image[image_id]
        items.append(_item(f"{path.name} image {file_name!r}", image, width, height, [f[0] for f in found],
                           [f[1] for f in found], names, [f[2] for f in found]))
    return DetectionSet("coco", root, names, items)


def _read_voc(root: Path) -> DetectionSet:
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    images, files = _paired(root, "JPEGImages", "Annotations", ".xml", "Pascal VOC")
    parsed, used = [], {}
    for path in files:
        try:
            tree = ElementTree.fromstring(_text(path))
        except (ElementTree.ParseError, DefusedXmlException) as e:
            raise MobilekitError(f"{path}: malformed XML ({type(e).__name__}: {e})") from None
        stem = Path(tree.findtext("filename") or path.stem).stem
        _claim(path, stem, images, used, "JPEGImages/")
        objects = []
        for obj in tree.findall("object"):
            name, box = (obj.findtext("name") or "").strip(), obj.find("bndbox")
            if not name or box is None:
                raise MobilekitError(f"{path}: an object without name or bndbox")
            x0, y0, x1, y1 = (_number(path.name, box.findtext(k), k) for k in ("xmin", "ymin", "xmax", "ymax"))
            objects.append((name, [x0 - 1, y0 - 1, x1, y1], (obj.findtext("difficult") or "0").strip() == "1"))
        parsed.append((path, images[stem], objects))
    return _named_set("voc", root, parsed, images, used)


def _yolo_names(root: Path) -> list[str]:
    import yaml

    if (root / "data.yaml").is_file():
        try:
            doc = yaml.safe_load(_text(root / "data.yaml"))
        except yaml.YAMLError as e:
            raise MobilekitError(f"{root / 'data.yaml'}: malformed YAML ({str(e).splitlines()[0]})") from None
        names = doc.get("names") if isinstance(doc, dict) else None
        if isinstance(names, dict) and sorted(names) == list(range(len(names))):
            names = [names[i] for i in range(len(names))]
        if not isinstance(names, list) or not names:
            raise MobilekitError(f"{root / 'data.yaml'}: no names list (or a dict of 0..N-1)")
        return [str(n) for n in names]
    if (root / "classes.txt").is_file():
        names = [line.strip() for line in _text(root / "classes.txt").splitlines() if line.strip()]
        if names:
            return names
        raise MobilekitError(f"{root / 'classes.txt'}: empty")
    raise MobilekitError(f"YOLO data {str(root)!r} names no classes: add data.yaml (names: [...]) or classes.txt")


def _read_yolo(root: Path) -> DetectionSet:
    names = _yolo_names(root)
    if not (root / "images").is_dir():
        raise MobilekitError(f"YOLO data {str(root)!r} has labels/ but no images/")
    images = _images_under(root / "images")
    labels = {p.relative_to(root / "labels").with_suffix("").as_posix(): p
              for p in sorted((root / "labels").rglob("*.txt"))}
    for key, path in labels.items():
        if key not in images:
            raise MobilekitError(f"{path}: no image {key}.* in images/")
    items = []
    for key, image in images.items():
        width, height = image_size(image)
        boxes, ids = [], []
        path = labels.get(key)
        for n, line in enumerate(_text(path).splitlines() if path else [], 1):
            if not line.strip():
                continue
            where = f"{path.relative_to(root)} line {n}"
            parts = line.split()
            if len(parts) != 5:  # segments and keypoints are not boxes
                raise MobilekitError(f"{where}: expected 'class cx cy w h', got {line.strip()[:80]!r}")
            cls = _number(where, parts[0], "class id")
            if cls != int(cls) or not 0 <= cls < len(names):
                raise MobilekitError(f"{where}: unknown class id {parts[0]} (the {len(names)} names are 0.."
                                     f"{len(names) - 1})")
            cx, cy, w, h = (_number(where, v, "coordinate") for v in parts[1:])
            boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
            ids.append(int(cls))
        items.append(_item(str(path.relative_to(root)) if path else key, image, width, height, boxes, ids, names))
    return DetectionSet("yolo", root, names, items)


def _read_kitti(root: Path) -> DetectionSet:
    images, files = _paired(root, "image_2", "label_2", ".txt", "KITTI")
    parsed, used = [], {}
    for path in files:
        _claim(path, path.stem, images, used, "image_2/")
        objects = []
        for n, line in enumerate(_text(path).splitlines(), 1):
            parts = line.split()
            if not parts or parts[0] == "DontCare":
                continue
            if len(parts) not in (15, 16):
                raise MobilekitError(f"{path.name} line {n}: expected 15 KITTI fields (16 with a score), got "
                                     f"{len(parts)}")
            box = [_number(f"{path.name} line {n}", v, "bbox value") for v in parts[4:8]]
            objects.append((parts[0], box, False))
        parsed.append((path, images[path.stem], objects))
    return _named_set("kitti", root, parsed, images, used)


READERS = {"coco": _read_coco, "voc": _read_voc, "yolo": _read_yolo, "kitti": _read_kitti}


def read_detection_set(root: str | Path) -> DetectionSet:
    """The detection dataset in the folder ``root``, its layout recognised (:func:`detect_layout`).

    Raises:
        MobilekitError: an unrecognised or mixed layout; a malformed or empty annotation file; an annotation naming
            a missing image; an unknown class; a box outside its image or of zero or negative size; no box at all.
    """
    root = Path(root)
    layout = detect_layout(root)
    ds = READERS[layout](root)
    if not ds.items:
        raise MobilekitError(f"{LAYOUT_NAMES[layout]} data {str(root)!r} has no images")
    if not ds.num_boxes:
        raise MobilekitError(f"{LAYOUT_NAMES[layout]} data {str(root)!r} has {len(ds.items)} images and no box")
    return ds


# --- writers -------------------------------------------------------------------------------------------------


def _copy_image(item: Labelled, folder: Path, name: str) -> str:
    """The image copied into ``folder`` as ``name`` + its suffix; the file name written."""
    folder.mkdir(parents=True, exist_ok=True)
    file_name = name + item.image.suffix.lower()
    shutil.copyfile(item.image, folder / file_name)
    return file_name


def _write_coco(ds: DetectionSet, root: Path, stems: list[str]) -> None:
    images, annotations = [], []
    for image_id, (item, stem) in enumerate(zip(ds.items, stems), 1):
        file_name = _copy_image(item, root / "images", stem)
        images.append({"id": image_id, "file_name": file_name, "width": item.width, "height": item.height})
        for box, label, ignore in zip(item.boxes.tolist(), item.labels.tolist(), item.ignore.tolist()):
            x0, y0, x1, y1 = box
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label + 1,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                "iscrowd": int(ignore)})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(ds.class_names)]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                       "categories": categories}))


def _write_voc(ds: DetectionSet, root: Path, stems: list[str]) -> None:
    from xml.sax.saxutils import escape

    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    for item, stem in zip(ds.items, stems):
        file_name = _copy_image(item, root / "JPEGImages", stem)
        objects = "".join(
            f"<object><name>{escape(ds.class_names[label])}</name><difficult>{int(ignore)}</difficult><bndbox>"
            f"<xmin>{x0 + 1:g}</xmin><ymin>{y0 + 1:g}</ymin><xmax>{x1:g}</xmax><ymax>{y1:g}</ymax></bndbox></object>"
            for (x0, y0, x1, y1), label, ignore in zip(item.boxes.tolist(), item.labels.tolist(), item.ignore.tolist()))
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{escape(file_name)}</filename><size><width>{item.width}</width><height>"
            f"{item.height}</height><depth>3</depth></size>{objects}</annotation>\n")


def _write_yolo(ds: DetectionSet, root: Path, stems: list[str]) -> None:
    import yaml

    (root / "labels").mkdir(parents=True, exist_ok=True)
    for item, stem in zip(ds.items, stems):
        _copy_image(item, root / "images", stem)
        lines = [f"{label} {(x0 + x1) / 2 / item.width:.8f} {(y0 + y1) / 2 / item.height:.8f} "
                 f"{(x1 - x0) / item.width:.8f} {(y1 - y0) / item.height:.8f}"
                 for (x0, y0, x1, y1), label in zip(item.boxes.tolist(), item.labels.tolist())]
        (root / "labels" / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
    (root / "data.yaml").write_text(yaml.safe_dump({"names": list(ds.class_names)}, sort_keys=False))


def _write_kitti(ds: DetectionSet, root: Path, stems: list[str]) -> None:
    (root / "label_2").mkdir(parents=True, exist_ok=True)
    for item, stem in zip(ds.items, stems):
        _copy_image(item, root / "image_2", stem)
        lines = [f"{ds.class_names[label]} 0.00 0 0.00 {x0:.4f} {y0:.4f} {x1:.4f} {y1:.4f} 0.00 0.00 0.00 0.00 0.00 "
                 "0.00 0.00" for (x0, y0, x1, y1), label in zip(item.boxes.tolist(), item.labels.tolist())]
        (root / "label_2" / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))


WRITERS = {"coco": _write_coco, "voc": _write_voc, "yolo": _write_yolo, "kitti": _write_kitti}


def write_detection_set(ds: DetectionSet, root: str | Path, layout: str) -> Path:
    """``ds`` written into the new folder ``root`` in ``layout`` (images copied, named 000000, 000001, ...).

    VOC's ends are written 1-based, YOLO's coordinates normalised with 8 decimals, KITTI's with 4: read back, the
    boxes agree to 1e-4 pixels. YOLO and KITTI have no ``ignore`` flag (written as plain boxes), and KITTI's class
    names must be single words.

    Raises:
        MobilekitError: an unknown layout, a folder that exists, a class name KITTI cannot hold.
    """
    if layout not in WRITERS:
        raise MobilekitError(f"unknown detection layout {layout!r}; layouts: {', '.join(LAYOUTS)}")
    root = Path(root)
    if root.exists():
        raise MobilekitError(f"{str(root)!r} exists; detection data is written into a new folder")
    if layout == "kitti":
        bad = [n for n in ds.class_names if not n or any(c.isspace() for c in n) or n == "DontCare"]
        if bad:
            raise MobilekitError(f"KITTI class names are single words other than DontCare; cannot write {bad[0]!r}")
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))  # renamed whole when done
    try:
        WRITERS[layout](ds, work, [f"{i:06d}" for i in range(len(ds.items))])
        work.rename(root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return root
