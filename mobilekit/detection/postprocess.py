"""A detector's int8 .tflite with TFLite's detection post-processing: the contract app runtimes read.

The Keras detector outputs box deltas ``[1, N, 4]`` and class scores ``[1, N, C]`` (probabilities) as two tensors,
so each gets its own int8 scale: one scale shared by pixel-range deltas and probabilities would round every score
to zero. The file adds, after a DEQUANTIZE of each, the TFLite_Detection_PostProcess op (decode against the anchors
and NMS, in float: it has no int8 kernel), with its four float outputs: boxes ``[1, M, 4]`` (ymin, xmin, ymax,
xmax, normalised), classes ``[1, M]``, scores ``[1, M]``, count ``[1]``. Every op before the DEQUANTIZEs is int8
(:func:`detector_problems` says what is not).

The op is a composite: a ``tf.function`` whose ``experimental_implements`` signature the converter replaces by the
custom op. A graph frozen from concrete functions inlines it (the op disappears, measured), so the detector is
converted from a SavedModel, as TensorFlow's object-detection exporter does.

:func:`reference` is the same decode and NMS in numpy (mobilekit.detection.boxes): the op's "fast" NMS takes each
anchor's best class and suppresses across classes. Tested equal to the op's outputs on the same dequantized inputs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np

from mobilekit.detection.boxes import DELTA_SCALES, decode, nms
from mobilekit.tflite_file import POSTPROCESS_OP  # the detector's tail (re-exported)


@dataclass(frozen=True)
class PostProcess:
    """The post-processing op's settings (SqueezeDet's NMS IoU 0.4)."""

    num_classes: int
    max_detections: int = 100
    score_threshold: float = 0.05
    iou_threshold: float = 0.4
    scales: tuple = DELTA_SCALES

    def signature(self) -> str:
        """The ``experimental_implements`` text the converter legalizes to the op."""
        y, x, h, w = self.scales
        attrs = [("max_detections", f"i: {self.max_detections}"), ("max_classes_per_detection", "i: 1"),
                 ("use_regular_nms", "b: false"), ("nms_score_threshold", f"f: {self.score_threshold:f}"),
                 ("nms_iou_threshold", f"f: {self.iou_threshold:f}"), ("y_scale", f"f: {y:f}"),
                 ("x_scale", f"f: {x:f}"), ("h_scale", f"f: {h:f}"), ("w_scale", f"f: {w:f}"),
                 ("num_classes", f"i: {self.num_classes}")]
        return " ".join(['name: "TFLite_Detection_PostProcess"',
                         *(f'attr {{ key: "{k}" value {{ {v} }} }}' for k, v in attrs)])


def reference(deltas: np.ndarray, scores: np.ndarray, anchors: np.ndarray, post: PostProcess) -> tuple:
    """(boxes (M, 4) normalised yxyx, classes (M,), scores (M,)) as the op computes them for one image."""
    best, label = scores.max(axis=1), scores.argmax(axis=1)
    candidates = np.flatnonzero(best > post.score_threshold)
    decoded = decode(deltas[candidates], anchors[candidates], post.scales)
    keep = nms(decoded, best[candidates], post.iou_threshold, post.max_detections)
    return decoded[keep], label[candidates][keep], best[candidates][keep]


def convert_detector(model, anchors: np.ndarray, calibration: np.ndarray | None, post: PostProcess | None,
                     input_type: str = "int8", logits: bool = False) -> bytes:
    """The full-int8 .tflite of ``model`` (image -> deltas, scores) at batch 1, ``input_type`` (int8 or uint8)
    input; with ``post`` the post-processing op and its four float outputs, without (``--raw-outputs``) the int8
    deltas and scores. ``calibration`` None: the float .tflite instead (float input, the same outputs).
    ``logits``: the model's second output is class logits, and the file applies the sigmoid (an int8 LOGISTIC)."""
    from mobilekit.backend import quiet_native_stderr, tf
    from mobilekit.convert import full_int8

    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32)
    module = tf.Module()
    # The variables only, not the Keras model: saving a model traces every layer's call for the SavedModel's
    # Keras metadata (17 s of a small detector's conversion), which the converter never reads.
    module.weights = list(model.variables)

    def outputs(x):
        deltas, scores = model(x, training=False)
        return deltas, tf.sigmoid(scores) if logits else scores

    if post is None:
        module.serve = tf.function(outputs, input_signature=[spec])
    else:
        @tf.function(experimental_implements=post.signature())
        def postprocess(box_encodings, class_predictions, anchor_boxes):  # replaced by the op: its body is never run
            return (tf.constant(0.0, name="boxes"), tf.constant(0.0, name="classes"),
                    tf.constant(0.0, name="scores"), tf.constant(0.0, name="num_detections"))

        constant = tf.constant(np.asarray(anchors, np.float32))
        module.serve = tf.function(lambda x: postprocess(*outputs(x), constant), input_signature=[spec])
    with tempfile.TemporaryDirectory() as folder, quiet_native_stderr():
        tf.saved_model.save(module, folder, signatures=module.serve.get_concrete_function())
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if calibration is not None:
            full_int8(converter, calibration, tf.float32 if post is not None else None)
            converter.inference_input_type = {"int8": tf.int8, "uint8": tf.uint8}[input_type]
        converter.allow_custom_ops = post is not None
        return converter.convert()


def detector_problems(content: bytes) -> list[str]:
    """What is not int8 in a detector file other than its post-processing tail (the op, the DEQUANTIZEs feeding
    it, their float tensors and the anchors): mobilekit.tflite_file's full-int8 check with the tail allowed."""
    from mobilekit.tflite_file import TfliteFile

    f = TfliteFile(content)
    tail = [op for op in f.ops if op.name == POSTPROCESS_OP]
    if len(tail) != 1:
        return [f"{len(tail)} {POSTPROCESS_OP} ops (one expected)"]
    allowed_tensors = {*tail[0].inputs, *tail[0].outputs}
    feeding = [op for op in f.ops if op.name == "DEQUANTIZE" and op.outputs[0] in tail[0].inputs]
    allowed_ops = {op.index for op in (*tail, *feeding)}
    allowed = {f.tensors[i].name for i in allowed_tensors}
    problems = [p for p in f.float_problems() if not any(f"{name!r}" in p for name in allowed)]
    return [p for p in problems if not any(p.startswith(f"op #{i} ") for i in allowed_ops)]


def detections_on(content: bytes, images: np.ndarray, with_inputs: bool = False) -> list[dict]:
    """Each image of ``images`` ``[n, H, W, 3]`` (the file's input type) through the file as an app runs it, one
    interpreter for all: the post-processing op's outputs, read by the op (the file's output order is not the op's).
    ``with_inputs``: also the dequantized deltas and class scores the op was given (every tensor kept: slower, the
    same kernels)."""
    from mobilekit.litert import make_interpreter
    from mobilekit.tflite_file import TfliteFile

    op = next(op for op in TfliteFile(content).ops if op.name == POSTPROCESS_OP)
    interpreter = make_interpreter(content, keep_tensors=with_inputs)
    index = interpreter.get_input_details()[0]["index"]
    found = []
    for image in images:
        interpreter.set_tensor(index, image[None])
        interpreter.invoke()
        boxes, classes, scores, count = (interpreter.get_tensor(i)[0] for i in op.outputs)
        n = int(np.asarray(count).reshape(-1)[0])
        out = {"boxes": boxes[:n], "classes": classes[:n].astype(np.int64), "scores": scores[:n]}
        if with_inputs:
            out["deltas"], out["class_scores"] = (interpreter.get_tensor(i)[0] for i in op.inputs[:2])
        found.append(out)
    return found


def outputs_of(content: bytes, image: np.ndarray, with_inputs: bool = False) -> dict:
    """:func:`detections_on` of one image ``[1, H, W, 3]``."""
    return detections_on(content, image, with_inputs)[0]


def raw_outputs_on(content: bytes, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image of ``images`` ``[n, H, W, 3]`` (the file's input type) through a file without the post-processing
    op (``--raw-outputs``), one interpreter for all: (deltas ``[n, N, 4]``, class scores ``[n, N, C]``), dequantized
    as an app dequantizes them. The two outputs are told apart by the signature's order (output_0: deltas), not by
    shape (C may be 4)."""
    from mobilekit.litert import make_interpreter

    runner = make_interpreter(content).get_signature_runner()
    name = next(iter(runner.get_input_details()))
    details = runner.get_output_details()
    out: dict[str, list] = {"output_0": [], "output_1": []}
    for image in images:
        got = runner(**{name: image[None]})
        for key, values in out.items():
            scale, zero_point = details[key]["quantization"]
            raw = got[key][0].astype(np.float32)
            values.append((raw - zero_point) * scale if scale else raw)
    return np.stack(out["output_0"]), np.stack(out["output_1"])


# How an app decodes a --raw-outputs file (what :func:`mobilekit.detection.boxes.decode` and :func:`reference` do).
DECODE_FORMULA = (f"yc = ty / {DELTA_SCALES[0]:g} * ha + yca; xc = tx / {DELTA_SCALES[1]:g} * wa + xca; "
                  f"h = exp(th / {DELTA_SCALES[2]:g}) * ha; w = exp(tw / {DELTA_SCALES[3]:g}) * wa; "
                  "box = (yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2), normalised; anchors (yca, xca, ha, wa) "
                  "from anchors.txt; then per anchor its best class's score, those above the score threshold, greedy "
                  "NMS across classes")
