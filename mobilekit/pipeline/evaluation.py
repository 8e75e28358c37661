"""Small test sets, honestly reported: accuracy with its 95% confidence interval for the test-set size,
per-class accuracy, the confusion matrix (and its picture), and a warning for thinly tested classes."""

from __future__ import annotations

import io
import math

import numpy as np

# A class with fewer test images than this has a per-class accuracy too coarse to act on (1 image = 5+ points).
MIN_TEST_IMAGES_PER_CLASS = 20
Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of ``correct / n`` (sound at small ``n`` and near 0 or 1, unlike p +- z*se)."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Rows: the true class, columns: the predicted one."""
    m = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(m, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return m


def class_report(y_true, y_pred, class_names: list[str]) -> dict:
    """report.json's ``accuracy.int8_detail``: the 95% interval, per-class accuracy and the confusion matrix."""
    y_true = np.asarray(y_true)
    m = confusion_matrix(y_true, y_pred, len(class_names))
    correct, n = int(np.trace(m)), int(m.sum())
    per_class = {}
    for i, name in enumerate(class_names):
        total = int(m[i].sum())
        per_class[name] = {"test_images": total, "accuracy": float(m[i, i] / total) if total else None}
    low, high = wilson_interval(correct, n)
    return {"ci95": [round(low, 4), round(high, 4)], "ci_method": "Wilson score interval, 95%",
            "per_class": per_class, "confusion": m.tolist(), "confusion_axes": "rows: true class, columns: predicted"}


def thin_class_warnings(detail: dict) -> list[str]:
    thin = {k: v["test_images"] for k, v in detail["per_class"].items() if v["test_images"] < MIN_TEST_IMAGES_PER_CLASS}
    if not thin:
        return []
    listed = ", ".join(f"{k!r} ({v})" for k, v in list(thin.items())[:8]) + (" ..." if len(thin) > 8 else "")
    return [f"{len(thin)} class(es) have fewer than {MIN_TEST_IMAGES_PER_CLASS} test images: {listed}; their "
            f"per-class accuracy moves in steps of 5+ points (pass a larger --test-data folder)"]


def confusion_png(detail: dict, title: str) -> bytes:
    """The confusion matrix as a PNG (rows normalised to the share of each true class, counts written in)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(detail["per_class"])
    m = np.asarray(detail["confusion"], np.float64)
    share = m / np.maximum(1, m.sum(axis=1, keepdims=True))
    size = max(4.0, 0.45 * len(names) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if len(names) <= 30:
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
