"""The app interface around the int8 body (mobilekit.app_io): uint8 and float32 in and out put on and taken off a
converted file on the flatbuffer, the same answers as the int8 file, nothing else changed."""

import numpy as np
import pytest

from mobilekit.app_io import IO_TYPES, body, same_answers, with_io
from mobilekit.errors import MobilekitError
from mobilekit.tflite_file import TfliteFile

ADDED = {"uint8": {"QUANTIZE": 2}, "float32": {"QUANTIZE": 1, "DEQUANTIZE": 1}}


@pytest.fixture(scope="module")
def converted():
    """A small conv net (seeded weights, a wide head so that answers differ image to image) converted to full int8,
    and 40 images of other colours in the build's [0, 1] range."""
    from mobilekit.backend import keras
    from mobilekit.convert import convert_pair

    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    h = layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    h = layers.GlobalAveragePooling2D()(layers.Conv2D(16, 3, strides=2, activation="relu")(h))
    outputs = layers.Dense(10, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(stddev=8))(h)
    rng = np.random.default_rng(1)
    images = (rng.random((40, 1, 1, 3)) * 0.8 + rng.random((40, 32, 32, 3)) * 0.2).astype(np.float32)
    content = convert_pair(keras.Model(inputs, outputs), images[:16])["int8"]
    return content, images


def test_the_answers_differ_image_to_image(converted):
    """What the comparisons below rest on: 40 images, 40 different int8 answers."""
    from mobilekit.litert import make_interpreter, quantize_input

    content, images = converted
    it = make_interpreter(content)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    answers = set()
    for i in range(len(images)):
        it.set_tensor(inp["index"], quantize_input(images[i:i + 1], inp))
        it.invoke()
        answers.add(it.get_tensor(out["index"]).tobytes())
    assert len(answers) == 40


@pytest.mark.parametrize("io", ["uint8", "float32"])
def test_an_interface_gives_the_int8_files_answers_and_changes_nothing_else(converted, io):
    content, images = converted
    made = with_io(content, io)
    f, own = TfliteFile(made), TfliteFile(content)
    assert f.interface == {"input": io, "output": io, "ops": {0, len(f.ops) - 1}}
    assert [t.name for t in f.inputs + f.outputs] == [t.name for t in own.inputs + own.outputs]  # the app's names
    assert f.float_problems() == []  # still full int8 between the interface ops
    counts = own.op_counts()
    for name, n in ADDED[io].items():
        counts[name] = counts.get(name, 0) + n
    assert f.op_counts() == dict(sorted(counts.items()))
    if io == "uint8":  # the same scale, the zero point 128 up
        for app, inner in zip(f.inputs + f.outputs, own.inputs + own.outputs):
            assert (app.dtype, app.scale[0], app.zero_point[0]) == ("UINT8", inner.scale[0], inner.zero_point[0] + 128)
    assert same_answers(made, content, images) == {"images": 40, "identical": 40}
    # Taken off again: the body's ops and tensors, weights to the byte, the app's names on its inputs and outputs.
    back = TfliteFile(body(made))
    assert back.op_counts() == own.op_counts() and back.interface == {"input": "int8", "output": "int8", "ops": set()}
    assert [t.name for t in back.inputs + back.outputs] == [t.name for t in own.inputs + own.outputs]
    assert [w.data.tobytes() for _, w in back.weights()] == [w.data.tobytes() for _, w in own.weights()]
    assert same_answers(body(made), content, images) == {"images": 40, "identical": 40}


@pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve_all_tensors`")
def test_a_uint8_input_given_the_pixels_is_the_pixel_itself(converted):
    """With the build's pixel mapping (float = pixel / 255) the uint8 input takes the pixel as it is, what MediaPipe
    feeds; here the body's input range came from 16 images that never reach 1.0, so the QUANTIZE in front
    requantizes, and every pixel value still lands on the int8 value the kit's own quantization gives."""
    from ai_edge_litert.interpreter import Interpreter

    from mobilekit.litert import quantize_input

    content, images = converted
    made = with_io(content, "uint8", pixels=(1 / 255, 0.0))
    f, own = TfliteFile(made), TfliteFile(content)
    assert (f.inputs[0].scale[0], f.inputs[0].zero_point[0]) == (np.float32(1 / 255), 0)
    assert own.inputs[0].scale[0] != np.float32(1 / 255)  # a real requantization, not a shift
    photos = np.round(images * 255) / np.float32(255)  # pixel values, as every build's images are
    assert same_answers(made, content, photos) == {"images": 40, "identical": 40}
    it = Interpreter(model_content=made, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    pixels = (np.arange(32 * 32 * 3) % 256).astype(np.uint8).reshape(1, 32, 32, 3)
    it.set_tensor(it.get_input_details()[0]["index"], pixels)
    it.invoke()
    fed = it.get_tensor(f.ops[0].outputs[0])  # what the QUANTIZE hands the body
    detail = {"dtype": np.int8, "quantization": (float(own.inputs[0].scale[0]), int(own.inputs[0].zero_point[0]))}
    assert np.array_equal(fed, quantize_input(pixels.astype(np.float32) / np.float32(255), detail))
    with pytest.raises(MobilekitError, match="zero point 127.5 is not a whole number"):
        with_io(content, "uint8", pixels=(2 / 255, -1.0 * 255 / 255))


def test_int8_is_the_file_itself_and_a_file_without_interface_is_its_own_body(converted):
    content, _ = converted
    assert with_io(content, "int8") is content and body(content) is content
    assert IO_TYPES[0] == "uint8"  # the default: what MediaPipe Tasks and the Task Library take


def test_the_answers_check_has_teeth(converted):
    """The last conv's int8 weights negated under the same uint8 interface: the check finds the changed answers."""
    from mobilekit.tflite_file import model_object, pack_model

    content, images = converted
    made = with_io(content, "uint8")
    model = model_object(made)
    op, weight = TfliteFile(made).weights()[-1]
    buffer = model.buffers[model.subgraphs[0].tensors[weight.index].buffer]
    buffer.data = (-weight.data.astype(np.int16)).clip(-128, 127).astype(np.int8).view(np.uint8).ravel()
    assert same_answers(pack_model(model), content, images)["identical"] < 20


def test_what_an_interface_cannot_go_around_is_refused_in_one_line(converted):
    from mobilekit.app_metadata import image_classifier

    content, _ = converted
    with pytest.raises(MobilekitError, match="one of uint8, int8, float32; received 'int4'"):
        with_io(content, "int4")
    with pytest.raises(MobilekitError, match="uint8 interface goes around int8 inputs"):
        with_io(with_io(content, "float32"), "uint8")  # float32 inputs are not an int8 body
    labelled = image_classifier(content, name="m", description="d", preprocessing={"scale": 1 / 255, "offset": 0},
                                labels=[str(i) for i in range(10)])
    with pytest.raises(MobilekitError, match="before the TFLite metadata"):
        with_io(labelled, "uint8")
