"""Classify already-resized RGB images with MediaPipe Tasks' ImageClassifier; print what it answers as JSON.

Runs in .venv-mediapipe (scripts/setup.sh --test makes it: MediaPipe Tasks cannot share mobilekit's venv), so it
imports MediaPipe and NumPy only, never mobilekit.

Usage: mediapipe_classify.py MODEL.tflite IMAGES.npy
  IMAGES.npy: uint8 [N, H, W, 3] at the model's input size (MediaPipe's resize is then the identity).
  stdout: {"mediapipe": version, "results": [[[index, category_name, score], ...every class, best first], ...]}
"""

import json
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core import base_options


def classify(model: str, images: np.ndarray) -> list:
    options = vision.ImageClassifierOptions(base_options=base_options.BaseOptions(model_asset_path=model),
                                            max_results=-1)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        out = []
        for image in images:
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image)))
            out.append([[c.index, c.category_name, c.score] for c in result.classifications[0].categories])
    return out


if __name__ == "__main__":
    model_path, images_path = sys.argv[1:3]
    results = classify(model_path, np.load(images_path, allow_pickle=False))
    json.dump({"mediapipe": mp.__version__, "results": results}, sys.stdout)
