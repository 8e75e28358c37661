"""A detector's int8 file with TFLite's detection post-processing op: int8 up to a DEQUANTIZE of the deltas and of
the scores, the op's outputs equal to the numpy decode and NMS on the same inputs, and the raw form fully int8."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekit.detection.boxes import anchor_grid
from mobilekit.detection.postprocess import POSTPROCESS_OP, PostProcess, convert_detector, detector_problems
from mobilekit.detection.postprocess import outputs_of, reference
from mobilekit.tflite_file import TfliteFile

pytestmark = pytest.mark.xdist_group("detection_postprocess")  # one worker builds the module fixture `detector` for all

CLASSES, SHAPES, GRID = 3, [[0.2, 0.2], [0.4, 0.3]], 4


@pytest.fixture(scope="module")
def detector():
    """A small conv net with a ConvDet-like head (seeded): 4x4 cells x 2 anchors, deltas and sigmoid scores."""
    from mobilekit.backend import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for n in range(3):
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name=f"conv{n}")(x)
    n = GRID * GRID * len(SHAPES)
    deltas = keras.layers.Reshape((n, 4), name="deltas")(keras.layers.Conv2D(len(SHAPES) * 4, 3, padding="same")(x))
    scores = keras.layers.Conv2D(len(SHAPES) * CLASSES, 3, padding="same", bias_initializer="ones")(x)
    scores = keras.layers.Activation("sigmoid", name="scores")(keras.layers.Reshape((n, CLASSES))(scores))
    model = keras.Model(inputs, [deltas, scores])
    anchors = anchor_grid(SHAPES, GRID, GRID)
    calibration = np.random.default_rng(1).random((16, 32, 32, 3), np.float32)
    post = PostProcess(CLASSES, max_detections=10, score_threshold=0.1)
    return anchors, post, convert_detector(model, anchors, calibration, post), convert_detector(model, anchors,
                                                                                                calibration, None)


def test_the_signature_names_the_ops_settings():
    assert PostProcess(2, max_detections=20, score_threshold=0.0, iou_threshold=0.5).signature() == (
        'name: "TFLite_Detection_PostProcess" attr { key: "max_detections" value { i: 20 } } attr { key: '
        '"max_classes_per_detection" value { i: 1 } } attr { key: "use_regular_nms" value { b: false } } attr { key: '
        '"nms_score_threshold" value { f: 0.000000 } } attr { key: "nms_iou_threshold" value { f: 0.500000 } } attr '
        '{ key: "y_scale" value { f: 10.000000 } } attr { key: "x_scale" value { f: 10.000000 } } attr { key: '
        '"h_scale" value { f: 5.000000 } } attr { key: "w_scale" value { f: 5.000000 } } attr { key: "num_classes" '
        'value { i: 2 } }')


def test_the_file_is_int8_up_to_the_post_processing(detector):
    _, _, content, _ = detector
    f = TfliteFile(content)
    names = [op.name for op in f.ops]
    assert names.count(POSTPROCESS_OP) == 1 and names[-1] == POSTPROCESS_OP and names.count("DEQUANTIZE") == 2
    assert detector_problems(content) == []
    assert len(f.float_problems()) > 0  # the plain full-int8 check does see the float tail
    op = f.ops[-1]
    deltas, scores = (f.tensors[i] for i in op.inputs[:2])
    assert deltas.shape == (1, 32, 4) and scores.shape == (1, 32, CLASSES)
    dequantized = [f.tensors[f.ops[i].inputs[0]] for i, o in enumerate(f.ops) if o.name == "DEQUANTIZE"]
    assert dequantized[0].scale[0] != dequantized[1].scale[0]  # deltas and probabilities: a scale each
    assert {t.index for t in f.outputs} == set(op.outputs)


def test_the_ops_outputs_are_the_numpy_decode_and_nms(detector):
    anchors, post, content, _ = detector
    rng = np.random.default_rng(2)
    compared = 0
    for _ in range(5):
        image = rng.integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
        got = outputs_of(content, image, with_inputs=True)
        boxes, classes, scores = reference(got["deltas"], got["class_scores"], anchors, post)
        assert len(got["boxes"]) == len(boxes) > 0
        np.testing.assert_allclose(got["boxes"], boxes, atol=1e-5)
        assert got["classes"].tolist() == classes.tolist()
        np.testing.assert_allclose(got["scores"], scores, atol=1e-6)
        plain = outputs_of(content, image)  # as an app runs it: the same detections
        np.testing.assert_array_equal(plain["boxes"], got["boxes"])
        compared += len(boxes)
    assert compared >= 10


def test_raw_outputs_are_two_int8_tensors(detector):
    _, _, _, raw = detector
    f = TfliteFile(raw)
    assert f.float_problems() == [] and POSTPROCESS_OP not in [op.name for op in f.ops]
    assert sorted(t.shape for t in f.outputs) == [(1, 32, 3), (1, 32, 4)]
    assert detector_problems(raw) == [f"0 {POSTPROCESS_OP} ops (one expected)"]


def test_the_file_names_its_detector_outputs_and_their_run_time_shapes(detector):
    """The op's custom options are read back (max_detections 10), so `info` / `bench` name the four outputs, which the
    file stores without a shape; a raw file is no such detector."""
    from mobilekit.bench.command import _outputs_info

    _, _, content, raw = detector
    f = TfliteFile(content)
    op = f.ops[-1]
    assert f.custom_options(op)["max_detections"] == 10 and f.custom_options(op)["num_classes"] == CLASSES
    assert all(f.tensors[i].shape == () for i in op.outputs)
    roles = f.detector_outputs()
    assert [roles[i] for i in op.outputs] == [("boxes", [1, 10, 4]), ("classes", [1, 10]), ("scores", [1, 10]),
                                              ("count", [1])]
    assert sorted((o["role"], o["shape"]) for o in _outputs_info(f)) == sorted(roles.values())
    assert TfliteFile(raw).detector_outputs() is None and TfliteFile(raw).custom_options(TfliteFile(raw).ops[0]) == {}
    assert sorted(TfliteFile(raw).signature_outputs()) == ["output_0", "output_1"]
