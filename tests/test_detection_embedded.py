"""The embedded detection set: exact boxes around what was drawn, the same bytes from the same seed, read back by
the COCO reader."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from mobilekit.detection import read_detection_set
from mobilekit.detection.embedded import compose, make_embedded_set


def test_each_box_is_the_tight_box_of_what_was_drawn():
    rng = np.random.default_rng(0)
    items = np.zeros((3, 28, 28), np.uint8)
    items[:, 5:20, 8:14] = 200  # a bright bar: its drawn pixels are known
    background = np.full((96, 96, 3), 40, np.uint8)
    image, boxes, labels, masks = compose(rng, background, items, np.array([4, 1, 7]))
    assert len(boxes) >= 2 and set(labels.tolist()) <= {1, 4, 7}
    for box, mask in zip(boxes, masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
        x0, y0, x1, y1 = box.astype(int)
        assert np.all(image[y0:y1, x0:x1][mask[y0:y1, x0:x1]] != 40)  # every drawn pixel shows the item
    untouched = ~np.any(masks, axis=0)
    changed = np.any(image != 40, axis=-1)
    assert not np.any(changed & untouched & ~_near_an_edge(masks))  # only an item's faint edge (below ALPHA_EDGE)


def _near_an_edge(masks: np.ndarray) -> np.ndarray:
    """Pixels within 1 of a mask: an item's faint border (blend weight at most ALPHA_EDGE) may tint them."""
    grown = np.any(masks, axis=0)
    out = grown.copy()
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
        out |= np.roll(np.roll(grown, dy, axis=0), dx, axis=1)
    return out


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.needs_data
def test_the_set_is_made_the_same_from_the_same_seed_and_reads_as_coco(tmp_path):
    train, test = make_embedded_set(tmp_path / "a", train=40, test=12, seed=3)
    again, _ = make_embedded_set(tmp_path / "b", train=40, test=12, seed=3)
    other, _ = make_embedded_set(tmp_path / "c", train=40, test=12, seed=4)
    assert _digest(train) == _digest(again) != _digest(other)
    ds = read_detection_set(train)
    assert ds.layout == "coco" and len(ds.items) == 40 and ds.class_names[0] == "T-shirt/top"
    assert all(item.width == item.height == 128 for item in ds.items)
    sides = np.concatenate([np.maximum(i.boxes[:, 2] - i.boxes[:, 0], i.boxes[:, 3] - i.boxes[:, 1])
                            for i in ds.items if len(i.boxes)])
    assert sides.max() <= 0.55 * 128 and sides.min() >= 2  # an item's extent, at most its square's side
    assert len(read_detection_set(test).items) == 12
