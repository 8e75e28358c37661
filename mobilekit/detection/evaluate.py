"""Detection metrics as the field computes them: COCO's mAP@[.5:.95] and mAP@0.5 from pycocotools' COCOeval, with
per-class AP and the precision-recall curve at IoU 0.5.

Ground truth and detections are per image, in pixels ``(xmin, ymin, xmax, ymax)``; ground-truth boxes flagged
``ignore`` go in as COCO's ``iscrowd`` (a detection on them is neither right nor wrong). Every image counts, those
without boxes included (a detection there is a false positive). Classes without any ground-truth box are left out
of the means, as COCOeval leaves them out. pycocotools' console lines are kept off the console.

Example: ``coco_metrics(truth, found, class_names)["map50"]``.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Found:
    """One image's detections: ``boxes`` (n, 4) pixels xyxy, ``scores`` (n,), ``labels`` (n,) class indices."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def _ground_truth(items, class_names: list[str]) -> dict:
    images, annotations = [], []
    for image_id, item in enumerate(items, 1):
        images.append({"id": image_id, "width": int(item.width), "height": int(item.height)})
        for box, label, ignore in zip(np.asarray(item.boxes, float).tolist(), item.labels.tolist(),
                                      item.ignore.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label) + 1,
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": int(ignore),
                                "ignore": int(ignore)})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]}


def coco_metrics(items, found: list[Found], class_names: list[str], max_detections: int = 100) -> dict:
    """``{"map", "map50", "per_class": {name: {"ap", "ap50", "boxes"}}, "pr50": {name: [precision at each of
    the 101 recall points]}, "recall": [...], "images", "detections"}`` of ``found`` against ``items`` (the
    :class:`mobilekit.detection.formats.Labelled` images, in the same order). AP values are in [0, 1]; a class
    without ground truth has ``ap`` None."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(items) != len(found):
        raise ValueError(f"{len(found)} detection lists for {len(items)} images")
    results = [{"image_id": image_id, "category_id": int(label) + 1, "score": float(score),
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
               for image_id, f in enumerate(found, 1)
               for b, score, label in zip(np.asarray(f.boxes, float).tolist(), f.scores.tolist(), f.labels.tolist())]
    out = {"images": len(items), "detections": len(results), "max_detections": max_detections}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = _ground_truth(items, class_names)
        truth.createIndex()
        if not results:  # loadRes cannot take an empty list: nothing found is AP 0 where there was something
            precision = None
        else:
            evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
            evaluation.params.maxDets = [1, 10, max_detections]
            evaluation.evaluate()
            evaluation.accumulate()
            precision = evaluation.eval["precision"][:, :, :, 0, -1]  # [IoU, recall, class], area all, most dets
            out["recall"] = evaluation.params.recThrs.tolist()
    counts = np.bincount(np.concatenate([item.labels[~item.ignore] for item in items] or [np.zeros(0, int)]),
                         minlength=len(class_names))
    per_class, curves = {}, {}
    for k, name in enumerate(class_names):
        if counts[k] == 0:
            per_class[name] = {"ap": None, "ap50": None, "boxes": 0}
            continue
        p = np.zeros((1, 1)) if precision is None else np.clip(precision[:, :, k], 0, None)
        per_class[name] = {"ap": float(p.mean()), "ap50": float(p[0].mean()), "boxes": int(counts[k])}
        curves[name] = p[0].tolist() if precision is not None else []
    scored = [v for v in per_class.values() if v["ap"] is not None]
    out["map"] = float(np.mean([v["ap"] for v in scored])) if scored else 0.0
    out["map50"] = float(np.mean([v["ap50"] for v in scored])) if scored else 0.0
    out["per_class"], out["pr50"] = per_class, curves
    return out
