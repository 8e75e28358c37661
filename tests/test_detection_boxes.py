"""Box arithmetic against hand-computed cases: IoU, the TFLite detection op's delta encoding, the anchor grid's
order, k-means anchor shapes, SqueezeDet's target assignment and greedy NMS."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobilekit.detection import boxes as B
from mobilekit.errors import MobilekitError


def test_iou_by_hand():
    a = [[0, 0, 2, 2]]
    got = B.iou(a, [[1, 1, 3, 3], [0, 0, 2, 2], [2, 2, 4, 4], [0, 0, 1, 2]])
    np.testing.assert_allclose(got, [[1 / 7, 1.0, 0.0, 0.5]])  # 1 over 4 + 4 - 1; itself; a corner touch; a half


def test_pixel_and_normalised_boxes():
    got = B.to_normalized([[50, 30, 150, 90]], width=200, height=120)  # xyxy pixels -> yxyx in [0, 1]
    np.testing.assert_allclose(got, [[0.25, 0.25, 0.75, 0.75]])
    np.testing.assert_allclose(B.to_pixels(got, 200, 120), [[50, 30, 150, 90]])


def test_deltas_by_hand_and_back():
    anchor = [[0.5, 0.5, 0.2, 0.4]]  # yc, xc, h, w
    box = [[0.55, 0.05, 0.65, 0.85]]  # yc 0.6, xc 0.45, h 0.1, w 0.8
    d = B.encode(box, anchor)
    np.testing.assert_allclose(d, [[0.1 / 0.2 * 10, -0.05 / 0.4 * 10, math.log(0.5) * 5, math.log(2) * 5]])
    np.testing.assert_allclose(B.decode(d, anchor), box)
    np.testing.assert_allclose(B.encode(box, anchor, (1, 1, 1, 1)), [[0.5, -0.125, math.log(0.5), math.log(2)]])
    rng = np.random.default_rng(0)
    anchors = np.column_stack([rng.random((50, 2)), rng.uniform(0.05, 0.5, (50, 2))])
    deltas = rng.normal(0, 1, (50, 4))
    np.testing.assert_allclose(B.encode(B.decode(deltas, anchors), anchors), deltas, atol=1e-9)


def test_anchor_grid_is_cell_major():
    shapes = [[0.1, 0.2], [0.3, 0.4]]
    grid = B.anchor_grid(shapes, 2, 3)
    assert grid.shape == (2 * 3 * 2, 4)
    i, j, a = 1, 2, 1
    np.testing.assert_allclose(grid[(i * 3 + j) * 2 + a], [(i + 0.5) / 2, (j + 0.5) / 3, 0.3, 0.4])
    np.testing.assert_allclose(B.corners(grid[:1]), [[0.25 - 0.05, 1 / 6 - 0.1, 0.25 + 0.05, 1 / 6 + 0.1]])


def test_kmeans_finds_the_shapes_and_is_seeded():
    rng = np.random.default_rng(1)
    truth = np.array([[0.05, 0.05], [0.2, 0.1], [0.4, 0.6]])
    hw = np.concatenate([c * rng.uniform(0.95, 1.05, (40, 2)) for c in truth])
    shapes = B.kmeans_anchors(hw, 3, seed=3)
    np.testing.assert_allclose(shapes, truth, rtol=0.05)  # smallest area first
    np.testing.assert_array_equal(shapes, B.kmeans_anchors(hw, 3, seed=3))
    with pytest.raises(MobilekitError, match="2 distinct training box shapes cannot give 3 anchor shapes"):
        B.kmeans_anchors([[0.1, 0.1], [0.2, 0.2], [0.1, 0.1]], 3)


def test_assignment_follows_squeezedet():
    anchors = np.array([[0.25, 0.25, 0.5, 0.5], [0.25, 0.25, 0.4, 0.4], [0.75, 0.75, 0.5, 0.5]])
    boxes = np.array([[0.0, 0.0, 0.5, 0.5],  # anchor 0 exactly
                      [0.0, 0.0, 0.48, 0.48],  # best is anchor 0 too, taken: its next best, anchor 1
                      [0.9, 0.05, 0.95, 0.1]])  # overlaps no anchor: the nearest free one in (yc, xc, h, w)
    assert B.assign(boxes, anchors).tolist() == [0, 1, 2]  # 1 is nearest to the third (0.73 against 0.89), taken
    assert B.assign(boxes[2:], anchors).tolist() == [1]
    assert B.assign(boxes[:2], anchors[:1]).tolist() == [0, -1]  # no anchor left


def test_nms_by_hand():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]]
    scores = [0.9, 0.8, 0.7, 0.95]
    # 3 first; 0 overlaps it 90/100 (dropped); 1 overlaps 3 by 72/118 = 0.61 (kept at 0.65, dropped at 0.6); 2 alone
    assert B.nms(boxes, scores, 0.65, 10).tolist() == [3, 1, 2]
    assert B.nms(boxes, scores, 0.6, 10).tolist() == [3, 2]
    assert B.nms(boxes, scores, 0.65, 2).tolist() == [3, 1]
