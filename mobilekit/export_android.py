"""`mobilekit export android BUILD_DIR --to DIR`: a build's .tflite, labels and model.json for an app.

model.json is the part of report.json an app needs, with nothing left to guess: the input
tensor (shape, dtype, scale, zero point), how a camera/bitmap pixel becomes that tensor (channel
order, grey images, the resize's method, pixel-centre convention and rounding, the float formula,
the arithmetic), the output tensor, the label file and the model's sha256. The Java core of
android_demo (``android_demo/core``) reads it; a JVM test proves its input bytes equal the ones
mobilekit's own evaluation feeds LiteRT.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mobilekit.files import check_output_path, ensure_writable_dir, write_bytes_atomic, write_json_atomic
from mobilekit.data import INPUT_RANGES, RESIZE_CONVENTIONS
from mobilekit.errors import MobilekitError
from mobilekit.json_files import NUMBER, read_record
from mobilekit.schema import BuildReport

SCHEMA_VERSION = 1
DEMO_ASSETS = Path(__file__).resolve().parent.parent / "android_demo" / "app" / "src" / "main" / "assets"


def precision_summary(report: dict) -> dict:
    """What the model computes in, for the app: full int8, or how many ops are int16 / float (and the
    QUANTIZE / DEQUANTIZE between them); a report from before mixed precision is full int8."""
    p = report.get("precision")
    if not p:
        return {"mode": "int8", "full_int8": True}
    return {"mode": p["mode"], "full_int8": p["full_int8"], "ops": p["ops"],
            "layers_not_int8": {k: v for k, v in p["layers"].items() if v != "int8"}}


_QUANT = {"scale": (*NUMBER, None), "zero_point": (int, None), "dtype?": str, "shape?": [int]}  # null: float32
# What read_build and model_json read of report.json (mobilekit.json_files shapes).
BUILD_REPORT_SHAPE = {"sha256": str, "classes": [str], "files": {"tflite?": str, "labels?": str},
                      "preprocessing": {"size": [int], "scale": NUMBER, "offset": NUMBER, "channels?": int},
                      "quantization": {"input": _QUANT, "output": _QUANT}, "accuracy?": dict, "arch?": str}


def read_build(build_dir: Path) -> tuple[dict, bytes, list[str]]:
    """(report, .tflite bytes, labels) of a complete build folder, or a one-line MobilekitError."""
    if not build_dir.is_dir():
        raise MobilekitError(f"no build folder at {str(build_dir)!r}")
    report_path = build_dir / "report.json"
    if not report_path.is_file():
        raise MobilekitError(f"{str(build_dir)!r} is not a complete build: report.json is missing")
    report = read_record(report_path, BuildReport, "build report", BUILD_REPORT_SHAPE).to_dict()
    files, expected_sha, classes = report["files"], report["sha256"], report["classes"]
    model_path = build_dir / Path(str(files.get("tflite", ""))).name
    labels_path = build_dir / Path(str(files.get("labels", "labels.txt"))).name
    for p in (model_path, labels_path):
        if not p.is_file():
            raise MobilekitError(f"{str(build_dir)!r} is not a complete build: {p.name} is missing")
    content = model_path.read_bytes()
    if hashlib.sha256(content).hexdigest() != expected_sha:
        raise MobilekitError(f"{model_path} does not match report.json's sha256 (the file changed after the build)")
    labels = labels_path.read_text(encoding="utf-8").splitlines()
    if labels != list(classes):
        raise MobilekitError(f"{labels_path} does not list report.json's {len(classes)} classes in order")
    return report, content, labels


def model_json(report: dict, model_name: str, labels_name: str, content: bytes | None = None) -> dict:
    """The app's contract with the model, from a build report (a detector's outputs read from its file
    ``content``)."""
    pre, q = report["preprocessing"], report["quantization"]
    h, w = pre["size"]
    grey_source = report["accuracy"].get("dataset") == "fashion-mnist"
    if "detection" in report["accuracy"]:
        answers = {"task": "detection", **detector_outputs(report, content)}
    else:
        answers = {"task": "classification",
                   "output": {"shape": q["output"]["shape"], "dtype": q["output"]["dtype"],
                              "scale": q["output"]["scale"], "zero_point": q["output"]["zero_point"],
                              "meaning": "class probabilities (softmax), labels order"}}
    return {
        "schema_version": SCHEMA_VERSION,
        "model": model_name, "sha256": report["sha256"], "labels": labels_name, "num_classes": len(report["classes"]),
        "arch": report["arch"],
        "input": {"shape": [1, h, w, pre["channels"]], "dtype": q["input"]["dtype"], "layout": "NHWC",
                  "scale": q["input"]["scale"], "zero_point": q["input"]["zero_point"]},
        "precision": precision_summary(report),
        **answers,
        "preprocessing": {
            "channels": RESIZE_CONVENTIONS["channel_order"],
            "orientation": RESIZE_CONVENTIONS["orientation"],
            "grey_images": RESIZE_CONVENTIONS["grey"]
                           + (" - this model was trained on grey Fashion-MNIST images" if grey_source else ""),
            "resize": {"method": "bilinear", "to": [h, w], "aspect_ratio": RESIZE_CONVENTIONS["aspect_ratio"],
                       "pixel_centers": RESIZE_CONVENTIONS["pixel_centers"],
                       "antialias": RESIZE_CONVENTIONS["antialias"],
                       "interpolation": "per channel in float32: top = tl + (tr - tl) * dx; bottom = bl + (br - bl) "
                                        "* dx; value = top + (bottom - top) * dy",
                       "rounding": RESIZE_CONVENTIONS["rounding"]},
            "scale": pre["scale"], "offset": pre["offset"],
            "float_input": "float_input = uint8_pixel * scale + offset (float32)",
            "quantize": "none: float_input goes in as it is" if q["input"]["dtype"] == "float32" else
                        "q = clamp(round_half_even(float_input / input.scale + input.zero_point), "
                        "{}, {}) in float32".format(*INPUT_RANGES[q["input"]["dtype"]]),
            "arithmetic": "IEEE float32 throughout, every operation rounded (no fused multiply-add)"},
    }


# What each output of a detector means to the app (model.json's ``outputs``).
DETECTOR_OUTPUTS = {
    "boxes": "[1, M, 4] float32: ymin, xmin, ymax, xmax of each detection, normalised to the input (the whole image "
             "stretched to it: multiply y by the image's height and x by its width)",
    "classes": "[1, M] float32: each detection's class, an index into the labels file",
    "scores": "[1, M] float32: each detection's score (its class's sigmoid)",
    "count": "[1] float32: how many of the M rows are detections",
    "deltas": "[1, N, 4] box deltas (ty, tx, th, tw) of each anchor, decoded as detection.decode says",
    "class_scores": "[1, N, C] each anchor's class scores (sigmoids), labels order",
}

# What model.json's detector section reads of report.json's accuracy.detection.
DETECTION_SHAPE = {"score_threshold": NUMBER, "nms_iou": NUMBER, "max_detections": int, "grid": [int],
                   "anchors_per_cell": int, "decode": {"scales": [NUMBER], "formula": str}}


def detector_outputs(report: dict, content: bytes) -> dict:
    """model.json's ``outputs`` and ``detection`` for a detector: the post-processing op's four float outputs, or a
    ``--raw-outputs`` file's two int8 tensors with the anchors, the decode formula and the NMS the app applies. Each
    output is listed in the file's output order (the index an app's interpreter reads it at)."""
    from mobilekit.json_files import check_shape
    from mobilekit.tflite_file import TfliteFile

    check_shape(report["accuracy"]["detection"], DETECTION_SHAPE, "build report", "accuracy.detection")
    d = report["accuracy"]["detection"]
    f = TfliteFile(content)
    contract = f.detector_outputs() or {}  # the post-processing op's outputs: {tensor: (role, run-time shape)}
    in_model = bool(contract)
    roles = {index: role for index, (role, _) in contract.items()}
    if not in_model:  # the signature's order is the converter's: output_0 the deltas, output_1 the class scores
        signature = f.signature_outputs()
        roles = {signature.get("output_0"): "deltas", signature.get("output_1"): "class_scores"}
    shapes = {index: shape for index, (_, shape) in contract.items()}
    outputs = []
    for t in f.outputs:
        role = roles.get(t.index)
        if role is None:
            raise MobilekitError(f"the detector file's output {t.name!r} is none of its detection outputs")
        quantized = t.scale is not None and len(t.scale) and t.dtype != "FLOAT32"
        outputs.append({"name": role, "shape": shapes.get(t.index, list(t.shape)), "dtype": t.dtype.lower(),
                        "scale": float(t.scale[0]) if quantized else None,
                        "zero_point": int(t.zero_point[0]) if quantized else None, "meaning": DETECTOR_OUTPUTS[role]})
    detection = {"post_processing": "in the model (TFLite_Detection_PostProcess: decode and NMS)" if in_model else
                 "the app's: decode each anchor, then NMS (as detection.decode and detection.nms say)",
                 "score_threshold": d["score_threshold"], "nms_iou": d["nms_iou"], "max_detections": d["max_detections"],
                 "grid": d["grid"], "anchors_per_cell": d["anchors_per_cell"]}
    if not in_model:
        detection.update({"anchors": "anchors.txt", "anchor_format": "yc xc h w, normalised, one anchor a line, "
                          "cell-major (row, column, anchor), in the deltas' order",
                          "scales": d["decode"]["scales"], "decode": d["decode"]["formula"],
                          "nms": "greedy, highest score first (ties: lower anchor index); a box is dropped when its "
                                 "IoU with a kept one is above nms_iou; at most max_detections"})
    return {"outputs": outputs, "detection": detection}


def _arch_name(report: dict) -> str:
    """The registry's own name for the report's arch (a file name that cannot leave the folder)."""
    from mobilekit.archs import resolve

    try:
        name = resolve(str(report.get("arch")))
    except MobilekitError:
        raise MobilekitError(f"report.json names arch {str(report.get('arch'))[:80]!r}, which mobilekit does not "
                             "know: not a mobilekit build report") from None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise MobilekitError(f"arch {name!r} cannot name a file")
    return name


def _anchors(build_dir: Path, report: dict) -> bytes:
    """A detector build's anchors.txt, checked to hold its grid's anchors (four numbers each)."""
    path = build_dir / "anchors.txt"
    if not path.is_file():
        raise MobilekitError(f"{str(build_dir)!r} is not a complete build: anchors.txt is missing")
    d = report["accuracy"]["detection"]
    expected = d["grid"][0] * d["grid"][1] * d["anchors_per_cell"]
    content = path.read_bytes()
    rows = [line.split() for line in content.decode("ascii", "replace").splitlines()]
    if len(rows) != expected or any(len(row) != 4 for row in rows):
        raise MobilekitError(f"{path} does not hold the report's {expected} anchors of four numbers")
    return content


def export_android(build_dir: str | Path, to: str | Path | None = None) -> dict:
    """Copy a build's .tflite and labels.txt into ``to`` and write model.json there; returns model.json.

    Raises:
        MobilekitError: not a complete build, a .tflite that does not match the report's sha256,
            labels out of step with the report, or an unwritable destination.
    """
    build_dir = Path(build_dir)
    report, content, labels = read_build(build_dir)
    if to is None:
        if not DEMO_ASSETS.parent.is_dir():
            raise MobilekitError("the demo app's folder (android_demo/app) is not next to this install; pass --to DIR")
        to = DEMO_ASSETS
    if Path(to).resolve() != DEMO_ASSETS.resolve():  # the demo's own assets folder is the kit's
        check_output_path(to, "dir", "--to", owned_marker="model.json")
    model_name, labels_name = f"{_arch_name(report)}.tflite", "labels.txt"  # names from the kit, never the report
    out = ensure_writable_dir(to)
    doc = model_json(report, model_name, labels_name, content)
    write_bytes_atomic(out / model_name, content)
    write_bytes_atomic(out / labels_name, "".join(f"{c}\n" for c in labels).encode("utf-8"))
    if "anchors" in doc.get("detection", {}):  # a --raw-outputs detector: the app decodes against them
        write_bytes_atomic(out / doc["detection"]["anchors"], _anchors(build_dir, report))
    write_json_atomic(out / "model.json", doc)  # last: its presence means the other two are in place
    return doc

