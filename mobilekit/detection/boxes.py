"""The box arithmetic of a SqueezeDet-style detector, in numpy, in the conventions of TFLite's detection contract.

- Boxes are corners normalised to the model input, ``(ymin, xmin, ymax, xmax)``: the order the
  TFLite_Detection_PostProcess op outputs (:func:`to_normalized` converts a dataset's pixel boxes).
- Anchors are ``(ycenter, xcenter, height, width)``, normalised, one row per anchor: the op's anchors tensor. A
  ``gh x gw`` grid with K shapes has ``gh * gw * K`` anchors, cell-major (:func:`anchor_grid`), the order a conv
  output ``[gh, gw, K * ...]`` reshapes to.
- Box deltas are ``(ty, tx, th, tw)`` with the op's scales: ``ty = (yc - yc_a) / h_a * y_scale``,
  ``th = log(h / h_a) * h_scale`` (:func:`encode`, :func:`decode`). SqueezeDet's own deltas are these with all
  four scales 1; DELTA_SCALES are the op's usual (10, 10, 5, 5), which put the regression targets near unit range.

Anchor shapes come from k-means over the training boxes' (height, width) with ``1 - IoU`` as the distance
(:func:`kmeans_anchors`, YOLOv2's choice, medians as centres); each ground-truth box is assigned to one anchor as
SqueezeDet does (:func:`assign`); :func:`nms` is greedy non-maximum suppression.
"""

from __future__ import annotations

import numpy as np

from mobilekit.errors import MobilekitError

DELTA_SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w: the TFLite_Detection_PostProcess options


def to_normalized(boxes_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel boxes ``(xmin, ymin, xmax, ymax)`` of a ``width x height`` image -> normalised ``(ymin, xmin, ymax,
    xmax)``."""
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    return np.stack([b[:, 1] / height, b[:, 0] / width, b[:, 3] / height, b[:, 2] / width], axis=1)


def to_pixels(boxes_yxyx: np.ndarray, width: int, height: int) -> np.ndarray:
    """The inverse of :func:`to_normalized`."""
    b = np.asarray(boxes_yxyx, np.float64).reshape(-1, 4)
    return np.stack([b[:, 1] * width, b[:, 0] * height, b[:, 3] * width, b[:, 2] * height], axis=1)


def corners(anchors: np.ndarray) -> np.ndarray:
    """Anchors ``(yc, xc, h, w)`` -> corners ``(ymin, xmin, ymax, xmax)``."""
    a = np.asarray(anchors, np.float64).reshape(-1, 4)
    return np.concatenate([a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2], axis=1)


def centres(boxes: np.ndarray) -> np.ndarray:
    """Corners ``(ymin, xmin, ymax, xmax)`` -> ``(yc, xc, h, w)``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The (len(a), len(b)) intersection over union of two sets of corner boxes (any one corner order for both)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def shape_iou(hw: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """IoU of (height, width) pairs placed on one centre: k-means' similarity."""
    hw, shapes = np.asarray(hw, np.float64).reshape(-1, 2), np.asarray(shapes, np.float64).reshape(-1, 2)
    inter = np.minimum(hw[:, None, 0], shapes[None, :, 0]) * np.minimum(hw[:, None, 1], shapes[None, :, 1])
    return inter / (np.prod(hw, axis=1)[:, None] + np.prod(shapes, axis=1)[None, :] - inter)


def kmeans_anchors(hw: np.ndarray, k: int, seed: int = 0, iterations: int = 300) -> np.ndarray:
    """K anchor shapes (height, width), smallest area first: k-means over the boxes' ``hw`` with ``1 - IoU`` as the
    distance, k-means++ seeding (seeded) and medians as centres.

    Raises:
        MobilekitError: fewer distinct box shapes than ``k``, or a shape that is not positive.
    """
    hw = np.asarray(hw, np.float64).reshape(-1, 2)
    if k < 1:
        raise MobilekitError(f"anchors per cell must be >= 1; received {k}")
    if np.any(hw <= 0) or not np.all(np.isfinite(hw)):
        raise MobilekitError("box heights and widths must be positive to cluster anchor shapes")
    if len(np.unique(hw, axis=0)) < k:
        raise MobilekitError(f"{len(np.unique(hw, axis=0))} distinct training box shapes cannot give {k} anchor "
                             "shapes; lower --anchors-per-cell")
    rng = np.random.default_rng(seed)
    shapes = hw[[rng.integers(len(hw))]]
    while len(shapes) < k:  # k-means++: the next centre drawn in proportion to its squared distance
        d = (1 - shape_iou(hw, shapes).max(axis=1)) ** 2
        shapes = np.vstack([shapes, hw[rng.choice(len(hw), p=d / d.sum())]])
    assigned = None
    for _ in range(iterations):
        nearest = shape_iou(hw, shapes).argmax(axis=1)
        if assigned is not None and np.array_equal(nearest, assigned):
            break
        assigned = nearest
        for c in range(k):
            members = hw[nearest == c]
            if len(members):
                shapes[c] = np.median(members, axis=0)
            else:  # an empty cluster takes the box worst served by the others
                shapes[c] = hw[shape_iou(hw, shapes).max(axis=1).argmin()]
    return shapes[np.argsort(np.prod(shapes, axis=1), kind="stable")]


def anchor_grid(shapes: np.ndarray, grid_h: int, grid_w: int) -> np.ndarray:
    """The ``grid_h * grid_w * K`` anchors ``(yc, xc, h, w)`` of K ``shapes`` (height, width) centred in every cell,
    cell-major: anchor ``(i * grid_w + j) * K + a`` is shape ``a`` in row ``i``, column ``j``."""
    shapes = np.asarray(shapes, np.float64).reshape(-1, 2)
    yc = (np.arange(grid_h) + 0.5) / grid_h
    xc = (np.arange(grid_w) + 0.5) / grid_w
    cy, cx, a = np.meshgrid(yc, xc, np.arange(len(shapes)), indexing="ij")
    return np.stack([cy.ravel(), cx.ravel(), shapes[a.ravel(), 0], shapes[a.ravel(), 1]], axis=1)


def encode(boxes: np.ndarray, anchors: np.ndarray, scales=DELTA_SCALES) -> np.ndarray:
    """Deltas ``(ty, tx, th, tw)`` that move each anchor onto its box (row for row)."""
    b, a = centres(boxes), np.asarray(anchors, np.float64).reshape(-1, 4)
    sy, sx, sh, sw = scales
    return np.stack([(b[:, 0] - a[:, 0]) / a[:, 2] * sy, (b[:, 1] - a[:, 1]) / a[:, 3] * sx,
                     np.log(b[:, 2] / a[:, 2]) * sh, np.log(b[:, 3] / a[:, 3]) * sw], axis=1)


def decode(deltas: np.ndarray, anchors: np.ndarray, scales=DELTA_SCALES) -> np.ndarray:
    """Corner boxes ``(ymin, xmin, ymax, xmax)`` from deltas, as TFLite_Detection_PostProcess decodes them."""
    d, a = np.asarray(deltas, np.float64).reshape(-1, 4), np.asarray(anchors, np.float64).reshape(-1, 4)
    sy, sx, sh, sw = scales
    yc = d[:, 0] / sy * a[:, 2] + a[:, 0]
    xc = d[:, 1] / sx * a[:, 3] + a[:, 1]
    h = np.exp(d[:, 2] / sh) * a[:, 2]
    w = np.exp(d[:, 3] / sw) * a[:, 3]
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)


def assign(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The anchor each box is trained on, SqueezeDet's rule: boxes in order, each takes the free anchor of highest
    IoU, or, when it overlaps none, the free anchor nearest in ``(yc, xc, h, w)``; -1 when no anchor is free."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    anchors = np.asarray(anchors, np.float64).reshape(-1, 4)
    overlaps = iou(boxes, corners(anchors))
    taken = np.zeros(len(anchors), bool)
    out = np.full(len(boxes), -1, np.int64)
    for n in range(len(boxes)):
        if overlaps[n].max(initial=0) > 0:
            order = np.argsort(-overlaps[n], kind="stable")
            order = order[overlaps[n, order] > 0]
        else:
            order = np.argsort(np.sum((anchors - centres(boxes[n])) ** 2, axis=1), kind="stable")
        free = order[~taken[order]]
        if len(free):
            out[n] = free[0]
            taken[free[0]] = True
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_detections: int) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression: highest score first (ties: lower index), a box dropped when
    its IoU with a kept one is above ``iou_threshold``; at most ``max_detections``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    kept: list[int] = []
    for i in order:
        if len(kept) == max_detections:
            break
        if not kept or iou(boxes[[i]], boxes[kept]).max() <= iou_threshold:
            kept.append(int(i))
    return np.asarray(kept, np.int64)
