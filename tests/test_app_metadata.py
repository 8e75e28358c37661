"""TFLite metadata on the kit's files (what app runtimes read) and the runtimes a file fits, read from the bytes."""

import numpy as np
import pytest

from mobilekit.app_metadata import image_classifier, read, runtimes, section
from mobilekit.tflite_file import TfliteFile

LABELS = ["cat", "dog", "bird"]
PREPROCESSING = {"scale": 1 / 255, "offset": 0.0}  # the build's float = pixel / 255


@pytest.fixture(scope="module")
def files():
    """A small classifier as the converter writes it: float32, full int8, and uint8 in / uint8 out."""
    from mobilekit.backend import keras, tf
    from mobilekit.convert import _converter, convert_float, convert_int8

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))
    calibration = np.random.default_rng(0).random((8, 16, 16, 3), np.float32)
    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    return {"float": convert_float(model), "int8": convert_int8(model, calibration), "uint8": converter.convert()}


def _with_metadata(content, labels=LABELS):
    return image_classifier(content, name="tiny", version="mobilekit test", description="a test classifier",
                            preprocessing=PREPROCESSING, labels=labels)


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_metadata_reads_back_and_leaves_the_graph_byte_for_byte(files, kind):
    plain = files[kind]
    content = _with_metadata(plain)
    assert content != plain and content == _with_metadata(plain)  # deterministic: a build's bytes repeat
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as z:  # not the time of the call (it repeats only within 2 s)
        assert [(i.filename, i.date_time) for i in z.infolist()] == [("labels.txt", (1980, 1, 1, 0, 0, 0))]
    md = read(TfliteFile(content))
    assert (md["name"], md["version"], md["description"]) == ("tiny", "mobilekit test", "a test classifier")
    assert md["normalization"] == {"mean": [0.0], "std": [255.0]} and md["color_space"] == "RGB"
    assert md["labels"] == LABELS and md["associated_files"] == ["labels.txt"]
    assert read(TfliteFile(plain)) is None
    a, b = TfliteFile(plain), TfliteFile(content)
    assert a.ops == b.ops and len(a.tensors) == len(b.tensors)
    for s, t in zip(a.tensors, b.tensors):
        assert (s.name, s.shape, s.dtype) == (t.name, t.shape, t.dtype)
        for x, y in ((s.data, t.data), (s.scale, t.scale), (s.zero_point, t.zero_point)):
            assert (x is None and y is None) or np.array_equal(x, y)
    from mobilekit.litert import make_interpreter

    x = np.random.default_rng(1).integers(-128, 128, (1, 16, 16, 3)).astype(a.inputs[0].dtype.lower())
    if kind == "float":
        x = np.random.default_rng(1).random((1, 16, 16, 3), np.float32)
    outs = []
    for c in (plain, content):
        it = make_interpreter(c)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
    assert np.array_equal(*outs)


def test_runtimes_follow_the_image_classifier_rules(files):
    mediapipe = "MediaPipe Tasks ImageClassifier"
    int8 = TfliteFile(_with_metadata(files["int8"]))
    verdict = runtimes(int8, read(int8))
    assert verdict["LiteRT interpreter"] == "yes"
    assert verdict[mediapipe].startswith("no: input int8: it takes uint8 or float32")
    assert "(output int8)" in verdict[mediapipe]
    assert verdict["TFLite Task Library ImageClassifier"] == verdict[mediapipe]
    plain_float = TfliteFile(files["float"])
    assert runtimes(plain_float, None)[mediapipe] == "no: float32 input without normalisation in TFLite metadata"
    labelled = TfliteFile(_with_metadata(files["float"]))
    assert runtimes(labelled, read(labelled))[mediapipe] == "yes, class names from its 3 labels"
    assert runtimes(TfliteFile(files["uint8"]), None)[mediapipe] == "yes, index only (no labels in TFLite metadata)"
    unlabelled = TfliteFile(_with_metadata(files["uint8"], labels=None))
    assert read(unlabelled)["labels"] is None and read(unlabelled)["associated_files"] == []
    assert runtimes(unlabelled, read(unlabelled))[mediapipe] == "yes, index only (no labels in TFLite metadata)"


def test_damaged_metadata_is_reported_not_raised(files):
    content = bytearray(_with_metadata(files["float"]))
    raw = TfliteFile(bytes(content)).metadata_buffers["TFLITE_METADATA"]
    at = bytes(content).find(raw)
    content[at:at + 8] = b"\xff" * 8  # the root table's offset now points outside the buffer
    app = section(TfliteFile(bytes(content)))
    assert list(app["metadata"]) == ["error"] and app["metadata"]["error"].startswith("unreadable TFLite metadata (")
    assert app["runtimes"]["MediaPipe Tasks ImageClassifier"].startswith("no: float32 input without normalisation")


def test_bench_says_what_a_file_carries_and_where_it_runs(files, tmp_path, cli_run):
    (tmp_path / "int8.tflite").write_bytes(_with_metadata(files["int8"]))
    (tmp_path / "float.tflite").write_bytes(files["float"])
    result = cli_run("bench", str(tmp_path / "int8.tflite"), str(tmp_path / "float.tflite"), "--num_runs", "2",
                     "--json", str(tmp_path / "bench.json"))
    assert result.returncode == 0, result.stderr
    assert "TFLite metadata: tiny (mobilekit test), input (pixel - 0) / 255, 3 labels" in result.stdout
    assert "TFLite metadata: none" in result.stdout
    import json

    models = json.loads((tmp_path / "bench.json").read_text())["models"]
    assert models[0]["app"]["metadata"]["labels"] == LABELS and models[1]["app"]["metadata"] is None


def test_weights_stored_after_the_flatbuffer_survive_the_metadata(files):
    """ai-edge-quantizer's files (`--precision`) keep buffers past the flatbuffer's end (offset, size); the
    metadata populator re-serialises the model, so they are moved inside first: the same weights, the same
    answers."""
    from mobilekit.litert import make_interpreter
    from mobilekit.tflite_file import model_object, pack_model

    model = model_object(files["float"])
    big = max((b for b in model.buffers if b.data is not None), key=lambda b: len(b.data))
    payload = bytes(bytearray(big.data))
    big.data, big.offset, big.size = None, 1, len(payload)
    length = len(pack_model(model))  # the same length once the offset is real: a nonzero uint64 either way
    big.offset = -(-length // 16) * 16
    outside = pack_model(model)
    outside += b"\0" * (big.offset - len(outside)) + payload
    assert TfliteFile(outside).tensors  # a valid file with a buffer outside the flatbuffer
    content = _with_metadata(outside)
    assert read(TfliteFile(content))["labels"] == LABELS
    x = np.random.default_rng(2).random((1, 16, 16, 3), np.float32)
    answers = []
    for c in (files["float"], outside, content):
        it = make_interpreter(c)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        answers.append(it.get_tensor(it.get_output_details()[0]["index"]))
    assert np.array_equal(answers[0], answers[1]) and np.array_equal(answers[0], answers[2])


def _damaged(content: bytes, how: str) -> bytes:
    """``content`` (with metadata) whose metadata root points outside its buffer, or whose zip of associated files
    (labels.txt) lost its last 30 bytes (the central directory)."""
    if how == "truncated zip":
        return content[:-30]
    data = bytearray(content)
    raw = TfliteFile(content).metadata_buffers["TFLITE_METADATA"]
    at = content.find(raw)
    data[at:at + 8] = b"\xff" * 8
    return bytes(data)


@pytest.mark.parametrize("how", ["bad root", "truncated zip"])
def test_hostile_metadata_never_crashes_the_commands(files, tmp_path, cli_run, how):
    """A uint8 file (TFLiteConverter's own interface) with damaged metadata, given to `info`, `bench`, `numerics`
    and what `view` does before it serves: each still does its work on the graph (exit 0, the metadata's trouble
    named where it is shown), never a traceback. (`export android` of such a build: tests/test_android_demo.py.)"""
    model = tmp_path / "m.tflite"
    model.write_bytes(_damaged(_with_metadata(files["uint8"]), how))
    (tmp_path / "float.tflite").write_bytes(files["float"])
    runs = {"info": cli_run("info", model),
            "bench": cli_run("bench", model, "--num_runs", "2", "--min_secs", "0"),
            "numerics": cli_run("numerics", model, "--reference", tmp_path / "float.tflite", "--images", "4")}
    for name, result in runs.items():
        assert result.returncode == 0 and "Traceback" not in result.stderr, (name, result.stderr[-2000:])
    import json

    from mobilekit.model_explorer import build_overlays, numerics_node_data, resolve_target

    _, content, report = resolve_target(str(model))
    assert report is None and build_overlays(report, content) == []
    assert cli_run("numerics", model, "--reference", tmp_path / "float.tflite", "--images", "4",
                   "--json", tmp_path / "n.json").returncode == 0
    layers = json.loads((tmp_path / "n.json").read_text())["layers"]
    assert all(doc["results"] for doc in numerics_node_data(content, layers))  # painted on the shipped graph
    app = json.loads(cli_run("info", model, "--json").stdout)["app"]
    assert (app["io"]["input"], app["io"]["output"], app["io"]["interface_ops"]) == ("uint8", "uint8", 2)
    if how == "bad root":
        assert app["metadata"]["error"].startswith("unreadable TFLite metadata")
    else:  # the metadata itself reads; the labels it names do not, so no class names
        verdict = app["runtimes"]["MediaPipe Tasks ImageClassifier"]
        assert app["metadata"]["labels"] is None and verdict == "yes, index only (no labels in TFLite metadata)"


def test_info_on_a_file_refuses_what_only_an_arch_takes(files, tmp_path, cli_error):
    (tmp_path / "m.tflite").write_bytes(_with_metadata(files["uint8"]))
    assert "describes the file" in cli_error("info", tmp_path / "m.tflite", "--arch", "mobilenet_v2")
    assert "describes the file" in cli_error("info", tmp_path / "m.tflite", "--squeeze-ratio", "0.5")
    assert "takes a .tflite file" in cli_error("info", tmp_path / "notes.txt")
    assert "no such model file" in cli_error("info", tmp_path / "missing.tflite")
