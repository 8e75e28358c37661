"""The embedded detection set: data a detector trains on with nothing but this machine, as classification's
default trains on Fashion-MNIST.

Fashion-MNIST items, tinted and scaled to 20-55% of the image, are laid on random crops of the natural photos
scikit-image ships (no download), one to three an image, some images with none. Each item is blended in by its own
intensity, so its box is exact: the tight box around the pixels it covers (alpha above ALPHA_EDGE), not a guess.
Training images use Fashion-MNIST's training items and test images its test items, so a test object was never
seen. The set is made deterministically from the seed in seconds and written in the COCO layout.

It is a stand-in: pasted objects on real backgrounds, not photographed scenes (no occlusion by the scene, no
perspective, no lighting of the object by the scene). docs/detection.md says what it can and cannot show.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from mobilekit.detection.formats import DetectionSet, Labelled, write_detection_set

# Natural photos in the scikit-image wheel used as backgrounds (grey ones repeated into three channels).
BACKGROUNDS = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
               "immunohistochemistry", "moon", "rocket")
SIZE = 128  # the images' side, pixels
OBJECTS = (0, 1, 2, 3)
OBJECT_ODDS = (0.05, 0.45, 0.35, 0.15)  # 5% of images are negatives
SCALE = (0.20, 0.55)  # an item's side as a share of the image's
MAX_OVERLAP = 0.2  # IoU above which a placement is drawn again
ALPHA_EDGE = 0.1  # an item's pixels: where its blend weight is above this


def _backgrounds() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in BACKGROUNDS:
        image = np.asarray(getattr(skimage.data, name)())
        out.append(np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3])
    return out


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def _crop(rng, photo: np.ndarray, size: int) -> np.ndarray:
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.35, 1.0) * min(h, w))
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    return _resize(photo[top:top + side, left:left + side], size, size)


def _iou(box, others) -> float:
    from mobilekit.detection.boxes import iou

    return float(iou([box], others).max()) if len(others) else 0.0


def compose(rng, background: np.ndarray, items: np.ndarray, labels: np.ndarray) -> tuple:
    """``background`` (HxWx3 uint8) with ``items`` (28x28 grey uint8, classes ``labels``) blended in at random
    scales, places and tints; (image, boxes (n, 4) xyxy pixels, labels (n,), masks (n, H, W) bool). A box is the
    tight box of its mask; an item whose placement overlaps another beyond MAX_OVERLAP is drawn again (20 tries,
    then left out)."""
    size = background.shape[0]
    image = background.astype(np.float64)
    boxes, kept, masks = [], [], []
    for item, label in zip(items, labels):
        for _ in range(20):
            side = int(rng.integers(int(SCALE[0] * size), int(SCALE[1] * size) + 1))
            x, y = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
            alpha = np.zeros((size, size))
            alpha[y:y + side, x:x + side] = _resize(item.reshape(28, 28), side, side) / 255.0
            mask = alpha > ALPHA_EDGE
            if not mask.any():
                continue
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            box = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
            if _iou(box, boxes) <= MAX_OVERLAP:
                break
        else:
            continue
        tint = rng.uniform(0.55, 1.0, 3) * 255
        image = alpha[..., None] * tint + (1 - alpha[..., None]) * image
        boxes.append(box)
        kept.append(int(label))
        masks.append(mask)
    return (np.clip(np.round(image), 0, 255).astype(np.uint8), np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(kept, np.int32), np.asarray(masks, bool).reshape(-1, size, size))


@functools.lru_cache(maxsize=1)
def _items():
    """Fashion-MNIST at 28x28x1, read once a process (each split of the set reads it; only indexed, never written)."""
    from mobilekit.data import load_fashion_mnist

    return load_fashion_mnist(28, 1)


def make_split(folder: Path, split: str, count: int, seed: int, size: int = SIZE) -> DetectionSet:
    """``count`` composed images as PNGs in ``folder`` and their :class:`DetectionSet` (classes: Fashion-MNIST's)."""
    fm = _items()
    x, y = (fm.x_train, fm.y_train) if split == "train" else (fm.x_test, fm.y_test)

    def draw(rng, background):
        chosen = rng.integers(0, len(x), rng.choice(OBJECTS, p=OBJECT_ODDS))
        return compose(rng, background, x[chosen], y[chosen])[:3]

    return composed_split(folder, split, count, seed, _backgrounds(), draw, fm.class_names, size)


def composed_split(folder: Path, split: str, count: int, seed: int, photos: list, draw, class_names,
                   size: int = SIZE) -> DetectionSet:
    """``count`` images as PNGs in ``folder``: each ``draw(rng, background)`` -> (image, boxes xyxy pixels, labels)
    on a random square crop of one of ``photos``; their :class:`DetectionSet` (a split's own seeded stream)."""
    from PIL import Image

    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for n in range(count):
        background = _crop(rng, photos[rng.integers(len(photos))], size)
        image, boxes, labels = draw(rng, background)
        path = folder / f"{split}_{n:05d}.png"
        Image.fromarray(image).save(path, compress_level=1)  # lossless either way; the default level is 4x slower
        items.append(Labelled(path, size, size, boxes, labels, np.zeros(len(boxes), bool)))
    return DetectionSet("coco", folder, list(class_names), items)


def make_embedded_set(root: str | Path, train: int = 2000, test: int = 400, seed: int = 0,
                      size: int = SIZE) -> tuple[Path, Path]:
    """The embedded set written as two COCO folders, ``root/train`` and ``root/test``; returns them.

    Raises:
        MobilekitError: Fashion-MNIST is not installed, or a folder exists.
    """
    root = Path(root)
    out = []
    for split, count in (("train", train), ("test", test)):
        with tempfile.TemporaryDirectory() as work:
            ds = make_split(Path(work), split, count, seed, size)
            out.append(write_detection_set(ds, root / split, "coco"))
    return out[0], out[1]
