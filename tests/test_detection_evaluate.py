"""COCO metrics through pycocotools against cases worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mobilekit.detection.evaluate import Found, coco_metrics
from mobilekit.detection.formats import Labelled

NAMES = ["cat", "dog", "bird"]


def _image(boxes, labels, ignore=None) -> Labelled:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Labelled(Path("x.png"), 100, 100, boxes, np.asarray(labels, np.int32),
                    np.asarray(ignore if ignore is not None else [False] * len(boxes), bool))


def _found(boxes, scores, labels) -> Found:
    return Found(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float), np.asarray(labels, int))


TRUTH = [_image([[10, 10, 50, 50], [60, 60, 90, 90]], [0, 1]), _image([[20, 20, 40, 60]], [0]), _image([], [])]


def test_perfect_detections_are_one_and_a_class_without_boxes_is_left_out():
    found = [_found(t.boxes, [0.9] * len(t.boxes), t.labels) for t in TRUTH]
    m = coco_metrics(TRUTH, found, NAMES)
    assert m["map"] == pytest.approx(1.0) and m["map50"] == pytest.approx(1.0)
    assert m["per_class"]["bird"] == {"ap": None, "ap50": None, "boxes": 0}
    assert m["per_class"]["cat"]["boxes"] == 2 and len(m["pr50"]["cat"]) == 101 == len(m["recall"])


def test_a_box_at_iou_two_thirds_counts_at_4_of_the_10_thresholds():
    # The dog box [60, 60, 90, 90] found as [60, 60, 90, 80]: IoU 600/900 = 0.667, right at IoU 0.5, 0.55, 0.6, 0.65.
    found = [_found([[10, 10, 50, 50], [60, 60, 90, 80]], [0.9, 0.9], [0, 1]), _found([[20, 20, 40, 60]], [0.9], [0]),
             _found([], [], [])]
    m = coco_metrics(TRUTH, found, NAMES)
    assert m["per_class"]["dog"]["ap"] == pytest.approx(0.4) and m["per_class"]["dog"]["ap50"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx((1.0 + 0.4) / 2) and m["map50"] == pytest.approx(1.0)


def test_a_false_positive_ranked_first_halves_the_precision():
    # One dog; a dog detection on the empty image scores higher than the right one: precision 1/2 at recall 1.
    found = [_found([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, 0.8], [0, 1]),
             _found([[20, 20, 40, 60]], [0.9], [0]), _found([[0, 0, 30, 30]], [0.95], [1])]
    m = coco_metrics(TRUTH, found, NAMES)
    assert m["per_class"]["dog"]["ap50"] == pytest.approx(0.5)
    assert m["pr50"]["dog"][0] == pytest.approx(0.5) and m["pr50"]["dog"][-1] == pytest.approx(0.5)


def test_an_ignored_box_is_neither_right_nor_wrong_and_nothing_found_is_zero():
    truth = [_image([[10, 10, 50, 50], [60, 60, 90, 90]], [0, 0], ignore=[False, True])]
    on_ignored = coco_metrics(truth, [_found([[10, 10, 50, 50], [60, 60, 90, 90]], [0.5, 0.9], [0, 0])], NAMES)
    assert on_ignored["map50"] == pytest.approx(1.0) and on_ignored["per_class"]["cat"]["boxes"] == 1
    nothing = coco_metrics(truth, [_found([], [], [])], NAMES)
    assert nothing["map"] == 0.0 and nothing["detections"] == 0
