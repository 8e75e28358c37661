"""Object detection: datasets in the layouts people bring (:mod:`.formats`) and the box arithmetic of a
SqueezeDet-style detector (:mod:`.boxes`: IoU, anchors from k-means, the delta encoding the TFLite detection
post-processing op decodes, target assignment, NMS). See docs/detection.md."""

from mobilekit.detection.formats import DetectionSet, Labelled, detect_layout, read_detection_set, write_detection_set

__all__ = ["DetectionSet", "Labelled", "detect_layout", "read_detection_set", "write_detection_set"]
