"""Detect objects in already-resized RGB images with MediaPipe Tasks' ObjectDetector; print what it finds as JSON.

Runs in .venv-runtimes (scripts/setup.sh --test makes it), so it imports the runtime and NumPy only, never
mobilekit.

Usage: detect.py MODEL.tflite IMAGES.npy
  IMAGES.npy: uint8 [N, H, W, 3] at the model's input size (the runtime's resize is then the identity).
  stdout: {"runtime", "version", "results": [[[x, y, width, height, index, category_name, score], ...], ...]}: per
  image, every detection in the order the model gives them (boxes in pixels, as the runtime reports them).
"""

import json
import sys
from importlib.metadata import version

import numpy as np


def mediapipe(model: str, images: np.ndarray) -> list:
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options

    options = vision.ObjectDetectorOptions(base_options=base_options.BaseOptions(model_asset_path=model),
                                           max_results=-1, score_threshold=0.0)
    out = []
    with vision.ObjectDetector.create_from_options(options) as detector:
        for image in images:
            found = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
            out.append([[d.bounding_box.origin_x, d.bounding_box.origin_y, d.bounding_box.width,
                         d.bounding_box.height, d.categories[0].index, d.categories[0].category_name,
                         d.categories[0].score] for d in found.detections])
    return out


if __name__ == "__main__":
    model_path, images_path = sys.argv[1:3]
    results = mediapipe(model_path, np.load(images_path, allow_pickle=False))
    json.dump({"runtime": "mediapipe", "version": version("mediapipe"), "results": results}, sys.stdout)
