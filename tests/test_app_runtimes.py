"""The built files in the runtime apps use: MediaPipe Tasks' ImageClassifier (mediapipe 1.2.2, the C++ core
Android runs), in .venv-mediapipe, given the images the kit evaluates, already at the model's size.

For each file: MediaPipe opens it, names every class as labels.txt does, and scores each class exactly as the
kit's own LiteRT run of the same file (so its top-1 is the kit's): the default build's uint8 file and its float
reference, the same body with a float32 interface, and the ImageNet models with `--weights imagenet` on the
bundled photos.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import MEDIAPIPE_PYTHON

MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
CLASSIFY = Path(__file__).parent / "runtimes" / "mediapipe_classify.py"
IMAGES = 300  # held-out Fashion-MNIST test images
SMALL = ["--input-size", "32", "--limit-train", "2000", "--limit-test", str(IMAGES), "--epochs", "2",
         "--prune-epochs", "0.5", "--qat-epochs", "0.25", "--latency-runs", "5", "--batch-size", "64",
         "--min-stage-steps", "0"]

pytestmark = [pytest.mark.slow, pytest.mark.needs_mediapipe]


def build(out: Path, *args: str) -> Path:
    result = subprocess.run([MOBILEKIT, "build", *args, "--out", str(out)], capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def mediapipe(model: Path, images: np.ndarray, tmp_path: Path) -> list:
    """MediaPipe's answers: per image, [index, category name, score] for every class, best first."""
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run([str(MEDIAPIPE_PYTHON), str(CLASSIFY), str(model), str(tmp_path / "images.npy")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert doc["mediapipe"] == "1.2.2" and len(doc["results"]) == len(images)
    return doc["results"]


def kit_scores(content: bytes, images: np.ndarray) -> np.ndarray:
    """The kit's own LiteRT run (its evaluation's input quantization), each output dequantized: [N, classes]."""
    from mobilekit.data import to_float
    from mobilekit.litert import make_interpreter, quantize_input

    it = make_interpreter(content)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    x = to_float(images)
    scores = []
    for i in range(len(x)):
        it.set_tensor(inp["index"], quantize_input(x[i:i + 1], inp))
        it.invoke()
        y = it.get_tensor(out["index"])[0]
        if y.dtype != np.float32:
            scale, zero_point = out["quantization"]
            y = (y.astype(np.float32) - zero_point) * np.float32(scale)
        scores.append(y)
    return np.stack(scores)


def check_same_answers(model: Path, labels: list[str], images: np.ndarray, tmp_path: Path) -> int:
    """MediaPipe on ``model``: the class names are labels.txt's, every score equals the kit's, the top-1 follows;
    returns how many different top-1 classes the images got (a model answering one class proves little)."""
    results = mediapipe(model, images, tmp_path)
    ours = kit_scores(model.read_bytes(), images)
    for i, categories in enumerate(results):
        assert sorted((index, name) for index, name, _ in categories) == list(enumerate(labels)), i
        theirs = np.zeros(len(labels), np.float32)
        for index, _, score in categories:
            theirs[index] = score
        assert np.array_equal(theirs, ours[i]), (i, np.abs(theirs - ours[i]).max())
        best = categories[0][0]
        assert ours[i][best] == ours[i].max()  # MediaPipe's top-1 is the kit's (a tie may name the other)
    return len({int(np.argmax(s)) for s in ours})


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """The default build (uint8 in and out) at a small budget, and the held-out images it evaluated."""
    from mobilekit.data import load_fashion_mnist

    out = build(tmp_path_factory.mktemp("fashion"), "--arch", "squeezenet", *SMALL)
    images = load_fashion_mnist(size=32, limit_train=1, limit_test=IMAGES).x_test
    return out, (out / "labels.txt").read_text().splitlines(), images


def test_the_default_build_answers_in_mediapipe_as_in_the_kit(fashion, tmp_path):
    out, labels, images = fashion
    report = json.loads((out / "report.json").read_text())
    assert report["quantization"]["input"]["dtype"] == "uint8" and report["quantization"]["input"]["pixel_exact"]
    assert check_same_answers(out / "squeezenet1_1.tflite", labels, images, tmp_path) >= 5
    top1 = np.argmax(kit_scores((out / "squeezenet1_1.tflite").read_bytes(), images), axis=1)
    assert np.mean(top1 == load_labels(IMAGES)) == pytest.approx(report["accuracy"]["tflite_int8"], abs=1e-9)


def load_labels(n: int) -> np.ndarray:
    from mobilekit.data import load_fashion_mnist

    return load_fashion_mnist(size=32, limit_train=1, limit_test=n).y_test


def test_the_float_reference_and_a_float32_interface_answer_in_mediapipe_too(fashion, tmp_path):
    """The float file (float32 in, MediaPipe normalises with the metadata's mean and std) and the int8 body with
    `--io float32`'s interface, its metadata written as a build writes it."""
    from mobilekit.app_io import body, with_io
    from mobilekit.app_metadata import image_classifier, read
    from mobilekit.tflite_file import TfliteFile

    out, labels, images = fashion
    assert check_same_answers(out / "squeezenet1_1_float.tflite", labels, images, tmp_path) >= 5
    shipped = TfliteFile.read(out / "squeezenet1_1.tflite")
    md = read(shipped)
    content = image_classifier(with_io(body(shipped.content), "float32"), name=md["name"],
                               description=md["description"], preprocessing={"scale": 1 / 255, "offset": 0.0},
                               labels=labels)
    (tmp_path / "float_io.tflite").write_bytes(content)
    assert TfliteFile(content).interface["input"] == "float32"
    assert check_same_answers(tmp_path / "float_io.tflite", labels, images, tmp_path) >= 5


@pytest.mark.parametrize("arch", ["mobilenet_v2", "efficientnet_lite0"])
def test_the_imagenet_models_name_the_bundled_photos_in_mediapipe_as_in_the_kit(arch, tmp_path):
    from mobilekit.photos import photo_dataset

    out = build(tmp_path / "build", "--arch", arch, "--weights", "imagenet", "--latency-runs", "5")
    labels = (out / "labels.txt").read_text().splitlines()
    images = photo_dataset(224).x_test
    assert len(labels) == 1000 and len(images) >= 15
    assert check_same_answers(out / f"{arch}.tflite", labels, images, tmp_path) >= 8
