"""android_demo: `mobilekit export android`, the Java core's parity with mobilekit's evaluation, the app's compile.

The JVM tests need a JDK (`scripts/setup.sh --test` installs Debian's openjdk-17-jdk-headless); without one
they fail with that message rather than skip. No Gradle here (no Google Maven): the Android-facing classes
are compiled with javac against signature stubs kept in tests/android_stubs.
"""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "android_demo" / "core" / "src" / "main" / "java"
APP = ROOT / "android_demo" / "app" / "src" / "main" / "java"
STUBS = Path(__file__).parent / "android_stubs"
MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
IMAGES = 150  # held-out Fashion-MNIST test images compared byte for byte
# A real build at a small cost: float training and QAT (whose input range is the pixels', so the int8 interface is
# the uint8 bytes minus 128); pruning has its own end-to-end tests, and the app's contract does not depend on it.
SMALL = ["--input-size", "32", "--limit-train", "2000", "--limit-test", str(IMAGES), "--epochs", "1",
         "--recipe", "int8-qat", "--qat-epochs", "0.25", "--latency-runs", "5", "--batch-size", "64",
         "--min-stage-steps", "0"]


def javac(out: Path, sources, classpath: str | None = None) -> subprocess.CompletedProcess:
    assert shutil.which("javac"), "javac missing: run scripts/setup.sh --test (installs openjdk-17-jdk-headless)"
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["javac", "-Xlint:all", "-Werror", "-d", str(out), *(["-cp", classpath] if classpath else []),
           *map(str, sources)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def compile_core(out: Path, root: Path = CORE) -> Path:
    result = javac(out, sorted(root.rglob("*.java")))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small real build, exported with `mobilekit export android`, and the compiled core."""
    base = tmp_path_factory.mktemp("android")
    build = base / "build"
    result = subprocess.run([MOBILEKIT, "build", "--arch", "squeezenet", *SMALL, "--out", str(build)],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    result = subprocess.run([MOBILEKIT, "export", "android", str(build), "--to", str(base / "assets")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return build, base / "assets", compile_core(base / "core")


@pytest.fixture(scope="module")
def held_out(exported, tmp_path_factory):
    """The first held-out test images as RGB PNGs, and the int8 bytes mobilekit's evaluation feeds LiteRT."""
    from PIL import Image

    from mobilekit.litert import make_interpreter, quantize_input
    from mobilekit.data import _read_idx, find_fashion_mnist, load_fashion_mnist, to_float

    build, assets, _ = exported
    folder = tmp_path_factory.mktemp("pngs")
    raw = _read_idx(find_fashion_mnist() / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)[:IMAGES]
    pngs = []
    for i, image in enumerate(raw):
        pngs.append(folder / f"{i}.png")
        Image.fromarray(np.repeat(image[..., None], 3, axis=-1), "RGB").save(pngs[-1])
    content = (assets / json.loads((assets / "model.json").read_text())["model"]).read_bytes()
    detail = make_interpreter(content).get_input_details()[0]
    ds = load_fashion_mnist(size=32, limit_train=1, limit_test=IMAGES)  # exactly what the build evaluated
    ours = [quantize_input(to_float(ds.x_test[i:i + 1]), detail).tobytes() for i in range(IMAGES)]
    return pngs, ours, content


def java_bytes(classes: Path, model_json: Path, pngs, out: Path) -> list[bytes]:
    out.mkdir(parents=True, exist_ok=True)
    args = [a for i, p in enumerate(pngs) for a in (str(p), str(out / f"{i}.bin"))]
    result = subprocess.run(["java", "-cp", str(classes), "dev.mobilekit.core.Preprocess", str(model_json), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return [(out / f"{i}.bin").read_bytes() for i in range(len(pngs))]


pytestmark = [pytest.mark.slow, pytest.mark.needs_data, pytest.mark.needs_jdk,
              pytest.mark.xdist_group("android_demo")]  # one worker builds the module fixture


def test_export_writes_the_apps_contract(exported):
    build, assets, _ = exported
    report = json.loads((build / "report.json").read_text())
    doc = json.loads((assets / "model.json").read_text())
    assert sorted(p.name for p in assets.iterdir()) == ["labels.txt", "model.json", "squeezenet1_1.tflite"]
    assert (assets / "squeezenet1_1.tflite").read_bytes() == (build / "squeezenet1_1.tflite").read_bytes()
    assert hashlib.sha256((assets / doc["model"]).read_bytes()).hexdigest() == doc["sha256"] == report["sha256"]
    assert (assets / "labels.txt").read_text().splitlines() == report["classes"] and doc["num_classes"] == 10
    assert doc["input"] == {"shape": [1, 32, 32, 3], "dtype": "uint8", "layout": "NHWC",
                            "scale": report["quantization"]["input"]["scale"],
                            "zero_point": report["quantization"]["input"]["zero_point"]}
    assert doc["output"]["zero_point"] == report["quantization"]["output"]["zero_point"]
    pre = doc["preprocessing"]
    assert pre["scale"] == report["preprocessing"]["scale"] and pre["offset"] == report["preprocessing"]["offset"]
    assert pre["resize"]["method"] == "bilinear" and pre["resize"]["antialias"] is False
    assert "half-pixel" in pre["resize"]["pixel_centers"] and "RGB" in pre["channels"]


def test_export_refuses_incomplete_or_altered_builds(exported, tmp_path, cli_error):
    build, _, _ = exported

    def error(folder) -> str:
        return cli_error("export", "android", folder, "--to", tmp_path / "out")

    assert "no build folder" in error(tmp_path / "missing")
    for damage, needle in (("report", "report.json is missing"), ("tflite", "squeezenet1_1.tflite is missing"),
                           ("sha", "does not match report.json's sha256"), ("labels", "classes in order")):
        copy = tmp_path / damage
        shutil.copytree(build, copy)
        if damage == "report":
            (copy / "report.json").unlink()
        elif damage == "tflite":
            (copy / "squeezenet1_1.tflite").unlink()
        elif damage == "sha":
            data = bytearray((copy / "squeezenet1_1.tflite").read_bytes())
            data[-1] ^= 1
            (copy / "squeezenet1_1.tflite").write_bytes(bytes(data))
        else:
            (copy / "labels.txt").write_text("only one\n")
        assert needle in error(copy)
    assert not (tmp_path / "out").exists()


def test_a_build_whose_metadata_is_damaged_still_exports(exported, tmp_path, cli_run):
    """`export android` copies the file and writes model.json from report.json, never reading the metadata: a build
    whose .tflite carries a damaged metadata buffer (report.json's sha256 made to match) exports as it is."""
    from mobilekit.tflite_file import TfliteFile

    build, _, _ = exported
    copy = tmp_path / "build"
    shutil.copytree(build, copy)
    data = bytearray((copy / "squeezenet1_1.tflite").read_bytes())
    at = bytes(data).find(TfliteFile(bytes(data)).metadata_buffers["TFLITE_METADATA"])
    data[at:at + 8] = b"\xff" * 8
    (copy / "squeezenet1_1.tflite").write_bytes(bytes(data))
    report = json.loads((copy / "report.json").read_text())
    report["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    (copy / "report.json").write_text(json.dumps(report))
    result = cli_run("export", "android", copy, "--to", tmp_path / "assets")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert (tmp_path / "assets" / "squeezenet1_1.tflite").read_bytes() == bytes(data)


def test_core_feeds_exactly_the_bytes_mobilekit_evaluates_and_ranks_like_python(exported, held_out, tmp_path):
    """150 held-out images: the Java core's input bytes equal mobilekit's own, and its top-1 over LiteRT's
    outputs equals Python's argmax."""
    from mobilekit.litert import make_interpreter

    _, assets, classes = exported
    pngs, ours, content = held_out
    theirs = java_bytes(classes, assets / "model.json", pngs, tmp_path / "bins")
    assert len(theirs) == IMAGES >= 100
    mismatched = [i for i in range(IMAGES) if theirs[i] != ours[i]]
    assert mismatched == [], f"{len(mismatched)} of {IMAGES} images differ, first {mismatched[:5]}"
    it = make_interpreter(content)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    python_top1 = []
    for i, data in enumerate(theirs):
        it.set_tensor(inp["index"], np.frombuffer(data, inp["dtype"]).reshape(inp["shape"]))
        it.invoke()
        scores = it.get_tensor(out["index"])[0]
        python_top1.append(int(np.argmax(scores)))
        (outputs / f"{i}.bin").write_bytes(scores.tobytes())
    files = [str(outputs / f"{i}.bin") for i in range(IMAGES)]
    r = subprocess.run(["java", "-cp", str(classes), "dev.mobilekit.core.Postprocess", str(assets / "model.json"),
                        str(assets / "labels.txt"), "1", *files], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [line.split("\t") for line in r.stdout.strip().splitlines()]
    labels = (assets / "labels.txt").read_text().splitlines()
    assert [f for f, *_ in lines] == files and all(rank == "1" for _, rank, *_ in lines)
    assert [int(index) for _, _, index, _, _ in lines] == python_top1
    assert all(label == labels[int(index)] for _, _, index, _, label in lines)
    assert len(set(python_top1)) > 1, "a degenerate model would make the top-1 comparison meaningless"


def test_an_int16x8_model_gets_the_same_int16_bytes_in_java(exported, held_out, tmp_path):
    """`--precision int16x8` files take int16 input: the core writes two bytes per value, NumPy's rounding."""
    from mobilekit.data import load_fashion_mnist, to_float
    from mobilekit.export_android import model_json
    from mobilekit.litert import make_interpreter, quantize_input
    from mobilekit.pipeline.artifacts import file_fields
    from mobilekit.precision import assign
    from mobilekit.tflite_file import TfliteFile

    build, _, classes = exported
    pngs = held_out[0][:20]
    ds = load_fashion_mnist(size=32, limit_train=64, limit_test=20)  # the PNGs' images, as the build reads them
    images = to_float(ds.x_test)
    content, _ = assign((build / "squeezenet1_1.tflite").read_bytes(),
                        (build / "squeezenet1_1_float.tflite").read_bytes(), to_float(ds.x_train), images,
                        precision="int16x8")
    report = {**json.loads((build / "report.json").read_text()), **file_fields(TfliteFile(content), b"", content)}
    doc = model_json(report, "m.tflite", "labels.txt")
    assert doc["input"]["dtype"] == doc["output"]["dtype"] == "int16" and "-32768, 32767" in \
        doc["preprocessing"]["quantize"]
    (tmp_path / "model.json").write_text(json.dumps(doc))
    detail = make_interpreter(content).get_input_details()[0]
    ours = [quantize_input(images[i:i + 1], detail).tobytes() for i in range(20)]
    theirs = java_bytes(classes, tmp_path / "model.json", pngs, tmp_path / "bins")
    assert all(len(t) == 32 * 32 * 3 * 2 for t in theirs)
    assert theirs == ours


@pytest.mark.parametrize("io", ["int8", "float32"])
def test_the_other_interfaces_get_the_same_bytes_in_java(exported, held_out, tmp_path, io):
    """The build's body with an int8 or a float32 interface (`--io`): model.json follows the file, and the core
    writes the bytes mobilekit's evaluation feeds (int8: the uint8 bytes minus 128; float32: little-endian floats)."""
    from mobilekit.app_io import body, with_io
    from mobilekit.data import load_fashion_mnist, to_float
    from mobilekit.export_android import model_json
    from mobilekit.litert import make_interpreter, quantize_input
    from mobilekit.pipeline.artifacts import file_fields
    from mobilekit.tflite_file import TfliteFile

    build, _, classes = exported
    pngs, uint8_bytes = held_out[0][:20], held_out[1][:20]
    content = with_io(body((build / "squeezenet1_1.tflite").read_bytes()), io)
    report = {**json.loads((build / "report.json").read_text()), **file_fields(TfliteFile(content), b"", content)}
    doc = model_json(report, "m.tflite", "labels.txt")
    assert doc["input"]["dtype"] == doc["output"]["dtype"] == io
    (tmp_path / "model.json").write_text(json.dumps(doc))
    images = to_float(load_fashion_mnist(size=32, limit_train=1, limit_test=20).x_test)
    detail = make_interpreter(content).get_input_details()[0]
    ours = [quantize_input(images[i:i + 1], detail).tobytes() for i in range(20)]
    theirs = java_bytes(classes, tmp_path / "model.json", pngs, tmp_path / "bins")
    assert theirs == ours
    if io == "int8":
        assert theirs == [(np.frombuffer(u, np.uint8).astype(np.int16) - 128).astype(np.int8).tobytes()
                          for u in uint8_bytes]
    else:
        assert all(len(t) == 32 * 32 * 3 * 4 for t in theirs)


@pytest.mark.needs_runtimes
def test_the_exported_file_answers_in_the_app_runtimes_as_in_the_kit(exported, tmp_path):
    """The demo's other path: the same uint8 file in MediaPipe Tasks' and the Task Library's ImageClassifier (in
    .venv-runtimes) on the held-out images at the model's size: labels.txt's names, the kit's scores to the bit,
    so its top-1, and the report's accuracy recomputed from them."""
    from mobilekit.data import load_fashion_mnist

    from test_app_runtimes import check_same_answers, kit_scores

    build, assets, _ = exported
    ds = load_fashion_mnist(size=32, limit_train=1, limit_test=IMAGES)
    labels = (assets / "labels.txt").read_text().splitlines()
    report = json.loads((build / "report.json").read_text())
    assert report["quantization"]["input"]["dtype"] == "uint8" and report["quantization"]["input"]["pixel_exact"]
    assert check_same_answers(assets / "squeezenet1_1.tflite", labels, ds.x_test, tmp_path) >= 5
    top1 = np.argmax(kit_scores((assets / "squeezenet1_1.tflite").read_bytes(), ds.x_test), axis=1)
    assert np.mean(top1 == ds.y_test) == pytest.approx(report["accuracy"]["tflite_int8"], abs=1e-9)


@pytest.mark.needs_runtimes
def test_the_float_file_and_a_float32_interface_answer_in_the_app_runtimes_too(exported, tmp_path):
    """The float reference (float32 in: the runtimes normalise with the metadata's mean and std) and the build's body
    with `--io float32`'s interface, its metadata written as a build writes it."""
    from mobilekit.app_io import body, with_io
    from mobilekit.app_metadata import image_classifier, read
    from mobilekit.data import load_fashion_mnist
    from mobilekit.tflite_file import TfliteFile

    from test_app_runtimes import check_same_answers

    build, _, _ = exported
    images = load_fashion_mnist(size=32, limit_train=1, limit_test=IMAGES).x_test
    labels = (build / "labels.txt").read_text().splitlines()
    # Float scores: the Task Library normalises in another order than `pixel * (1/255)`, so its probabilities
    # differ in the last bits (up to 3e-7 on 2,000 images of the default build); MediaPipe's were equal.
    assert check_same_answers(build / "squeezenet1_1_float.tflite", labels, images, tmp_path, atol=1e-6) >= 5
    shipped = TfliteFile.read(build / "squeezenet1_1.tflite")
    md = read(shipped)
    content = image_classifier(with_io(body(shipped.content), "float32"), name=md["name"],
                               description=md["description"], preprocessing={"scale": 1 / 255, "offset": 0.0},
                               labels=labels)
    (tmp_path / "float_io.tflite").write_bytes(content)
    assert TfliteFile(content).interface["input"] == "float32"
    assert check_same_answers(tmp_path / "float_io.tflite", labels, images, tmp_path) >= 5


def test_the_parity_check_has_teeth(exported, held_out, tmp_path):
    """A wrong zero point in model.json, or a resize without half-pixel centres in the core, changes bytes."""
    _, assets, classes = exported
    pngs, ours, _ = held_out
    doc = json.loads((assets / "model.json").read_text())
    doc["input"]["zero_point"] += 1
    wrong_zp = tmp_path / "wrong_zp.json"
    wrong_zp.write_text(json.dumps(doc))
    got = java_bytes(classes, wrong_zp, pngs[:20], tmp_path / "zp")
    assert sum(g != o for g, o in zip(got, ours)) == 20
    patched = tmp_path / "src"
    shutil.copytree(CORE, patched)
    source = next(patched.rglob("Preprocess.java"))
    text = source.read_text()
    assert "((float) i + 0.5f) * scale - 0.5f" in text
    source.write_text(text.replace("((float) i + 0.5f) * scale - 0.5f", "(float) i * scale"))
    got = java_bytes(compile_core(tmp_path / "patched", patched), assets / "model.json", pngs[:20], tmp_path / "rs")
    assert sum(g != o for g, o in zip(got, ours)) >= 15


def test_android_classes_compile_against_signature_stubs(tmp_path):
    core = compile_core(tmp_path / "core")
    for source in CORE.rglob("*.java"):
        assert "import android." not in source.read_text(), source  # the core stays Android-free
    stubs = javac(tmp_path / "stubs", sorted(STUBS.rglob("*.java")))
    assert stubs.returncode == 0, stubs.stderr
    app = javac(tmp_path / "app", sorted(APP.rglob("*.java")), f"{tmp_path / 'stubs'}:{core}")
    assert app.returncode == 0, app.stderr
    for name in ("MainActivity", "MediaPipeClassifier"):  # the kit's core, and MediaPipe Tasks on the same file
        assert (tmp_path / "app" / "dev" / "mobilekit" / "demo" / f"{name}.class").is_file(), name
