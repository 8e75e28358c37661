"""Classify already-resized RGB images with an app runtime's ImageClassifier; print what it answers as JSON.

Runs in .venv-runtimes (scripts/setup.sh --test makes it: neither runtime can share mobilekit's venv), so it
imports the runtime and NumPy only, never mobilekit.

Usage: classify.py mediapipe|tasklib MODEL.tflite IMAGES.npy
  mediapipe: MediaPipe Tasks' ImageClassifier (the C++ core Android's tasks-vision runs);
  tasklib: the TFLite Task Library's ImageClassifier (tflite-support's task API).
  IMAGES.npy: uint8 [N, H, W, 3] at the model's input size (the runtime's resize is then the identity).
  stdout: {"runtime", "version", "results": [[[index, category_name, score], ...every class, best first], ...]}
"""

import json
import sys
from importlib.metadata import version

import numpy as np


def mediapipe(model: str, images: np.ndarray) -> list:
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options

    options = vision.ImageClassifierOptions(base_options=base_options.BaseOptions(model_asset_path=model),
                                            max_results=-1)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        return [_categories(classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                          data=np.ascontiguousarray(image))))
                for image in images]


def tasklib(model: str, images: np.ndarray) -> list:
    from tflite_support.task import core, processor, vision

    options = vision.ImageClassifierOptions(base_options=core.BaseOptions(file_name=model),
                                            classification_options=processor.ClassificationOptions(max_results=-1))
    classifier = vision.ImageClassifier.create_from_options(options)
    return [_categories(classifier.classify(vision.TensorImage.create_from_array(np.ascontiguousarray(image))))
            for image in images]


def _categories(result) -> list:
    return [[c.index, c.category_name, c.score] for c in result.classifications[0].categories]


RUNTIMES = {"mediapipe": (mediapipe, "mediapipe"), "tasklib": (tasklib, "tflite-support")}

if __name__ == "__main__":
    runtime, model_path, images_path = sys.argv[1:4]
    run, package = RUNTIMES[runtime]
    results = run(model_path, np.load(images_path, allow_pickle=False))
    json.dump({"runtime": runtime, "version": version(package), "results": results}, sys.stdout)
