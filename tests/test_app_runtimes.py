"""The built files in the runtimes apps use, given the images the kit evaluates, already at the model's size:
MediaPipe Tasks' ImageClassifier (mediapipe 1.2.2, the C++ core Android's tasks-vision runs) and the TFLite Task
Library's (tflite-support 0.4.4), both in .venv-runtimes.

For each file and runtime: it opens the file, names every class as labels.txt does, and scores each class
exactly as the kit's own LiteRT run of the same file (so its top-1 is the kit's). The helpers here run on the
builds other modules make anyway: the default build's uint8 file, its float reference and the same body with a
float32 interface (tests/test_android_demo.py), MobileNetV2 with `--weights imagenet` on the bundled photos
(tests/test_pretrained_build.py); EfficientNet-Lite0's is built here.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import RUNTIMES_PYTHON

MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
CLASSIFY = Path(__file__).parent / "runtimes" / "classify.py"
RUNTIMES = {"mediapipe": "1.2.2", "tasklib": "0.4.4"}  # tests/runtimes/requirements.txt's pins

pytestmark = [pytest.mark.slow, pytest.mark.needs_runtimes]


def build(out: Path, *args: str) -> Path:
    result = subprocess.run([MOBILEKIT, "build", *args, "--out", str(out)], capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def runtime_answers(runtime: str, model: Path, images: np.ndarray, tmp_path: Path) -> list:
    """The runtime's answers: per image, [index, category name, score] for every class, best first."""
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run([str(RUNTIMES_PYTHON), str(CLASSIFY), runtime, str(model), str(tmp_path / "images.npy")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert doc["version"] == RUNTIMES[runtime] and len(doc["results"]) == len(images)
    return doc["results"]


def kit_scores(content: bytes, images: np.ndarray) -> np.ndarray:
    """The kit's own LiteRT run (its evaluation's input quantization), each output dequantized: [N, classes]."""
    from mobilekit.data import to_float
    from mobilekit.litert import outputs_on

    return np.stack([row[0][0] for row in outputs_on(content, to_float(images))])


def check_same_answers(model: Path, labels: list[str], images: np.ndarray, tmp_path: Path, atol: float = 0.0) -> int:
    """Each runtime on ``model``: the class names are labels.txt's, every score equals the kit's (within ``atol``:
    0, to the bit, unless said), the top-1 follows; returns how many different top-1 classes the images got (a
    model answering one class proves little)."""
    ours = kit_scores(model.read_bytes(), images)
    for runtime in RUNTIMES:
        for i, categories in enumerate(runtime_answers(runtime, model, images, tmp_path)):
            assert sorted((index, name) for index, name, _ in categories) == list(enumerate(labels)), (runtime, i)
            theirs = np.zeros(len(labels), np.float32)
            for index, _, score in categories:
                theirs[index] = score
            assert np.abs(theirs - ours[i]).max() <= atol, (runtime, i, np.abs(theirs - ours[i]).max())
            # its top-1 is the kit's (a tie, or a near-tie within atol, may name the other)
            assert ours[i][categories[0][0]] >= ours[i].max() - 2 * atol, (runtime, i)
    return len({int(np.argmax(s)) for s in ours})


def check_photos(out: Path, arch: str, tmp_path: Path) -> None:
    """An ImageNet build (``--weights imagenet``) on the bundled photos, at 224 as the build prepared them."""
    from mobilekit.photos import photo_dataset

    labels = (out / "labels.txt").read_text().splitlines()
    images = photo_dataset(224).x_test
    assert len(labels) == 1000 and len(images) >= 15
    assert check_same_answers(out / f"{arch}.tflite", labels, images, tmp_path) >= 8


@pytest.mark.extended
def test_efficientnet_lite0_names_the_bundled_photos_in_the_runtimes_as_in_the_kit(tmp_path):
    """(MobileNetV2's build is tests/test_pretrained_build.py's; the default build's, tests/test_android_demo.py's.)"""
    check_photos(build(tmp_path / "build", "--arch", "efficientnet_lite0", "--weights", "imagenet",
                       "--latency-runs", "5"), "efficientnet_lite0", tmp_path)
