"""What a detector trains on: per-anchor targets from boxes, the box-aware scale/crop jitter, and the loss.

Targets (one image, ``N`` anchors, ``C`` classes), numpy:
- **positives** are SqueezeDet's assigned anchors (each box takes the free anchor of highest IoU:
  mobilekit.detection.boxes.assign) and every other anchor whose IoU with a box is at least POSITIVE_IOU; a
  positive regresses to its box (deltas as the post-processing op decodes them) and scores that box's class;
- **ignored** anchors (IoU in [IGNORE_IOU, POSITIVE_IOU) with a box, or at least IGNORE_IOU with a box flagged
  ``ignore``) take no class loss: they are neither right nor wrong;
- every other anchor is background: all its class scores go to 0.

Packed as one float32 array ``[N, 5 + C + 1]``: ``(4 deltas, positive, C one-hot classes, class weight)``, which
:func:`split` turns into the two outputs' targets.

The loss: per-class sigmoid focal loss (alpha 0.25, gamma 2) on the class scores of every non-ignored anchor, smooth
L1 on the deltas of the positives, both summed and divided by the batch's positives (RetinaNet's normalisation); and
two pulls that keep the int8 outputs' scales fine: every other anchor's deltas towards 0, and class logits back
within +-LOGIT_BOUND.
"""

from __future__ import annotations

import numpy as np

from mobilekit.detection.boxes import assign, corners, encode, iou

POSITIVE_IOU = 0.5
IGNORE_IOU = 0.4
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
IDLE_DELTA_WEIGHT = 0.01  # pulls the deltas of anchors that are not positives towards 0 (box_loss)
LOGIT_BOUND, LOGIT_PULL = 8.0, 1.0  # class logits beyond +-8 (scores under 0.0003 or over 0.9997) are pulled back
# A box that keeps less than this fraction of its area in a jittered crop is dropped; more and it is clipped.
KEEP_VISIBLE = 0.4


def targets(boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray, anchors: np.ndarray,
            classes: int) -> np.ndarray:
    """The ``[N, 5 + C + 1]`` targets of one image: ``boxes`` (n, 4) normalised ``(ymin, xmin, ymax, xmax)``,
    ``labels`` (n,) class indices, ``ignore`` (n,) bool, ``anchors`` (N, 4) ``(yc, xc, h, w)``."""
    n_anchors = len(anchors)
    out = np.zeros((n_anchors, 5 + classes + 1), np.float32)
    out[:, -1] = 1.0
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ignore = np.asarray(ignore, bool).reshape(-1)
    if not len(boxes):
        return out
    overlaps = iou(corners(anchors), boxes)  # [N, n]
    kept = np.flatnonzero(~ignore)
    if len(ignore) > len(kept):
        out[overlaps[:, ignore].max(axis=1) >= IGNORE_IOU, -1] = 0.0
    if not len(kept):
        return out
    real = overlaps[:, kept]
    best = real.argmax(axis=1)
    best_iou = real.max(axis=1)
    owner = np.where(best_iou >= POSITIVE_IOU, kept[best], -1)
    out[(best_iou >= IGNORE_IOU) & (best_iou < POSITIVE_IOU), -1] = 0.0
    for b, a in zip(kept, assign(boxes[kept], anchors)):
        if a >= 0:
            owner[a] = b
    positive = np.flatnonzero(owner >= 0)
    out[positive, :4] = encode(boxes[owner[positive]], anchors[positive])
    out[positive, 4] = 1.0
    out[positive, 5 + np.asarray(labels)[owner[positive]]] = 1.0
    out[positive, -1] = 1.0
    return out


def split(y):
    """Packed targets ``[..., N, 5 + C + 1]`` -> (deltas' targets ``[..., N, 5]``, scores' ``[..., N, C + 1]``)."""
    return y[..., :5], y[..., 5:]


def jitter(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray, rng, low: float = 0.6,
           high: float = 1.0) -> tuple:
    """A random crop of ``image`` (uint8 HxWxC) covering ``low``-``high`` of each side, resized back to its size,
    with its normalised boxes moved and clipped (a box keeping less than KEEP_VISIBLE of its area is dropped):
    (image, boxes, labels, ignore)."""
    from mobilekit.data import resize_uint8

    h, w = image.shape[:2]
    sy, sx = rng.uniform(low, high, 2)
    ch, cw = max(1, int(round(h * sy))), max(1, int(round(w * sx)))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = image[y0:y0 + ch, x0:x0 + cw]
    resized = resize_uint8(crop[None], (h, w), image.shape[2])[0] if (ch, cw) != (h, w) else crop.copy()
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    window = np.array([y0 / h, x0 / w, (y0 + ch) / h, (x0 + cw) / w])
    area = np.prod(b[:, 2:] - b[:, :2], axis=1)
    clipped = np.concatenate([np.maximum(b[:, :2], window[:2]), np.minimum(b[:, 2:], window[2:])], axis=1)
    visible = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
    keep = visible >= KEEP_VISIBLE * np.maximum(area, 1e-12)
    scale = np.array([ch / h, cw / w, ch / h, cw / w])
    moved = (clipped[keep] - np.tile(window[:2], 2)) / scale
    return resized, np.clip(moved, 0.0, 1.0), np.asarray(labels)[keep], np.asarray(ignore, bool)[keep]


def box_loss(y_true, y_pred):
    """Smooth L1 on the positives' deltas over the batch's positives, plus IDLE_DELTA_WEIGHT x the mean squared
    delta of every other anchor (their deltas are never used, but untrained they reach +-100 and then set the int8
    output's scale: measured 1.49 per step, a seventh of an anchor)."""
    from mobilekit.backend import tf

    target, positive = y_true[..., :4], y_true[..., 4]
    diff = tf.abs(target - y_pred)
    per = tf.reduce_sum(tf.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5), axis=-1)
    idle = tf.reduce_sum(tf.square(y_pred), axis=-1) * (1.0 - positive)
    return (tf.reduce_sum(per * positive) / tf.maximum(1.0, tf.reduce_sum(positive))
            + IDLE_DELTA_WEIGHT * tf.reduce_sum(idle) / tf.maximum(1.0, tf.reduce_sum(1.0 - positive)))


def class_loss(y_true, logits):
    """Sigmoid focal loss on the class logits of every non-ignored anchor over the batch's positives, plus
    LOGIT_PULL x the mean square of how far each logit is beyond +-LOGIT_BOUND. Focal loss stops pushing a
    background logit once it is very negative, and with the head's weights shared they drifted to -500 in training:
    the int8 logits' scale became 2.0 and every score at most 0.5 (the int8 file's mAP@0.5 0.16 where float had
    0.26)."""
    from mobilekit.backend import tf

    target, weight = y_true[..., :-1], y_true[..., -1:]
    p = tf.sigmoid(logits)
    cross = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
    p_t = target * p + (1.0 - target) * (1.0 - p)
    alpha = target * FOCAL_ALPHA + (1.0 - target) * (1.0 - FOCAL_ALPHA)
    focal = alpha * tf.pow(1.0 - p_t, FOCAL_GAMMA) * cross
    positives = tf.reduce_sum(tf.reduce_max(target, axis=-1) * weight[..., 0])
    beyond = tf.nn.relu(tf.abs(logits) - LOGIT_BOUND)
    return (tf.reduce_sum(focal * weight) / tf.maximum(1.0, positives)
            + LOGIT_PULL * tf.reduce_mean(tf.square(beyond)))


def flip_targets(y, grid_h: int, grid_w: int, anchors_per_cell: int):
    """Packed targets of the horizontally mirrored image (tf): cells mirrored, ``tx`` negated. Exact for anchors
    centred in their cells (the grid is symmetric)."""
    from mobilekit.backend import tf

    width = y.shape[-1]
    g = tf.reverse(tf.reshape(y, [grid_h, grid_w, anchors_per_cell, width]), axis=[1])
    g = g * tf.constant([1.0, -1.0] + [1.0] * (width - 2), tf.float32)
    return tf.reshape(g, [grid_h * grid_w * anchors_per_cell, width])
