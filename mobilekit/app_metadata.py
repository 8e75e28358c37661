"""TFLite metadata on the files the kit writes, and what app runtimes a file fits.

Apps' runtimes (MediaPipe Tasks, the TFLite Task Library, Android Studio's ML Model Binding) read the model's
name, its input normalisation and its class names from TFLite metadata (the public ``metadata_schema.fbs``):
a ``TFLITE_METADATA`` buffer in the model and the label file zipped onto the end of the flatbuffer. The kit
writes it with tflite-support's metadata writers (installed ``--no-deps`` by scripts/setup.sh: its declared
protobuf<4 pin is for the Task Library's protos, which these writers never import) and reads it back with
that package's pure-Python generated schema and :mod:`zipfile` (no C++ parser touches an untrusted file).
Metadata never changes the graph: ops, tensors and weights stay byte for byte (tested).

Example: ``image_classifier(content, name="squeezenet1_1", version="0.1.0", description="...",
preprocessing=report["preprocessing"], labels=report["classes"])``.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from mobilekit.errors import MobilekitError

TFLITE_SUPPORT = "tflite-support==0.4.4"  # pinned here; scripts/setup.sh installs it --no-deps
INSTALL = f"pip install --no-deps {TFLITE_SUPPORT} (scripts/setup.sh does)"
# What MediaPipe Tasks' ImageClassifier (and the Task Library's) takes: one [1, H, W, 3] input of these types
# (float32 only with NormalizationOptions in the metadata), an output [1, N] or [1, 1, 1, N] of these types.
APP_TYPES = ("UINT8", "FLOAT32")


def _schema():
    try:
        from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
    except ImportError:
        raise MobilekitError(f"TFLite metadata needs tflite-support: {INSTALL}") from None
    return fb


def normalization(preprocessing: dict) -> tuple[list[float], list[float]]:
    """(mean, std) of the metadata's NormalizationOptions for the build's ``float = pixel * scale + offset``:
    ``(pixel - mean) / std`` with ``std = 1 / scale`` and ``mean = -offset / scale``."""
    scale, offset = float(preprocessing["scale"]), float(preprocessing["offset"])
    return [-offset / scale + 0.0], [1.0 / scale]  # + 0.0: no -0.0


def image_classifier(content: bytes, *, name: str, description: str, preprocessing: dict,
                     labels: list[str] | None, version: str | None = None) -> bytes:
    """``content`` with image-classifier metadata: name, version (``mobilekit <its version>`` unless given),
    description; the input as an RGB image with the build's normalisation; the output's class names as
    labels.txt (TENSOR_AXIS_LABELS; none for ``None``, an untrained export's)."""
    from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier as writer, writer_utils

    from mobilekit.tflite_file import inline_buffers

    def outputs(info, label_file: str, buffer: bytearray) -> dict:
        return {"output_md": info.ClassificationTensorMd(
            name="probability", description="Probability of each class in labels.txt",
            label_files=[info.LabelFileMd(file_path=label_file)] if labels is not None else None,
            tensor_type=writer_utils.get_output_tensor_types(buffer)[0])}

    return _populate(inline_buffers(content), writer, name=name, version=version, description=description,
                     preprocessing=preprocessing, labels=labels, outputs=outputs)


def _populate(content: bytes, writer, *, name: str, version: str | None, description: str, preprocessing: dict,
              labels: list[str] | None, outputs) -> bytes:
    """``content`` with the metadata a tflite-support ``writer`` module makes: the general and input-image metadata
    every kit file gets, and the output metadata ``outputs(metadata_info, label_file, buffer)`` returns (keywords
    of ``create_from_metadata_info``); the label file holds ``labels``; zip dates fixed."""
    if version is None:
        from importlib.metadata import version as installed

        version = f"mobilekit {installed('mobilekit')}"
    fb = _schema()
    from tensorflow_lite_support.metadata.python.metadata_writers import metadata_info, writer_utils

    mean, std = normalization(preprocessing)
    with tempfile.TemporaryDirectory(prefix="mobilekit-metadata-") as d:
        label_file = Path(d) / "labels.txt"
        label_file.write_text("".join(f"{c}\n" for c in labels or ()), encoding="utf-8")
        buffer = bytearray(content)
        made = writer.MetadataWriter.create_from_metadata_info(
            buffer,
            general_md=metadata_info.GeneralMd(name=name, version=version, description=description,
                                               author="mobilekit"),
            input_md=metadata_info.InputImageTensorMd(
                name="image", description=f"RGB image, float = (pixel - {mean[0]:g}) / {std[0]:g}",
                norm_mean=mean, norm_std=std, color_space_type=fb.ColorSpaceType.RGB,
                tensor_type=writer_utils.get_input_tensor_types(buffer)[0]),
            **outputs(metadata_info, str(label_file), buffer))
        return _fixed_zip_dates(bytes(made.populate()))


def outputs_in_op_order(content: bytes) -> bytes:
    """A detector file whose outputs are listed in TFLite_Detection_PostProcess's order (boxes, classes, scores,
    count), the order object-detector metadata and MediaPipe Tasks read them in; the converter lists them in
    another. Only the subgraph's output list changes."""
    from mobilekit.tflite_file import POSTPROCESS_OP, TfliteFile, model_object, pack_model

    op = next((op for op in TfliteFile(content).ops if op.name == POSTPROCESS_OP), None)
    if op is None:
        raise MobilekitError(f"not a detector file: no {POSTPROCESS_OP} op")
    model = model_object(content)
    if list(model.subgraphs[0].outputs) == list(op.outputs):
        return content
    model.subgraphs[0].outputs = list(op.outputs)
    return pack_model(model)


def object_detector(content: bytes, *, name: str, description: str, preprocessing: dict, labels: list[str],
                    version: str | None = None) -> bytes:
    """A detector file (TFLite_Detection_PostProcess's four outputs) with object-detector metadata: name, version,
    description, the input as an RGB image with the build's normalisation, the four outputs named as the Task
    Library and MediaPipe Tasks read them (location, category with labels.txt, score, number of detections), its
    outputs listed in that order (:func:`outputs_in_op_order`)."""
    from tensorflow_lite_support.metadata.python.metadata_writers import object_detector as writer

    from mobilekit.tflite_file import inline_buffers

    def outputs(info, label_file: str, buffer: bytearray) -> dict:
        return {"output_category_md": info.CategoryTensorMd(
            name="category", description="The class of each detection, an index into labels.txt",
            label_files=[info.LabelFileMd(file_path=label_file)])}

    return _populate(outputs_in_op_order(inline_buffers(content)), writer, name=name, version=version,
                     description=description, preprocessing=preprocessing, labels=labels, outputs=outputs)


# The populator zips the label file with the time of the call: a fixed date instead, so a build's bytes repeat.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _fixed_zip_dates(content: bytes) -> bytes:
    """``content`` (a flatbuffer with a zip of associated files appended) with every zip entry dated ZIP_DATE:
    the same files, stored the same way, appended to the same flatbuffer."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        entries = [(info, z.read(info)) for info in z.infolist()]
    if not entries:
        return content
    out = io.BytesIO(content[:min(info.header_offset for info, _ in entries)])
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as z:
        for info, data in entries:
            z.writestr(zipfile.ZipInfo(info.filename, date_time=ZIP_DATE), data, compress_type=info.compress_type)
    return out.getvalue()


def read(tfl) -> dict | None:
    """The metadata of a parsed file (mobilekit.tflite_file.TfliteFile): ``{"name", "version", "description",
    "normalization": {"mean", "std"} | None, "color_space", "labels": [...] | None, "associated_files"}``;
    None when it has none.

    Raises:
        MobilekitError: metadata that does not parse, or tflite-support missing.
    """
    raw = tfl.metadata_buffers.get("TFLITE_METADATA")
    if raw is None:
        return None
    fb = _schema()
    try:
        md = fb.ModelMetadataT.InitFromPackedBuf(bytearray(raw), 0)
        subgraph = (md.subgraphMetadata or [None])[0]
        inp = (subgraph.inputTensorMetadata or [None])[0] if subgraph else None
        norm = next((u.options for u in (inp.processUnits or []) if inp is not None
                     and u.optionsType == fb.ProcessUnitOptions.NormalizationOptions), None)
        content = inp.content if inp is not None else None
        color = (content.contentProperties.colorSpace if content is not None
                 and content.contentPropertiesType == fb.ContentProperties.ImageProperties else None)
        # A classifier's labels name its output's axis; a detector's name the values of its category output.
        kinds = (fb.AssociatedFileType.TENSOR_AXIS_LABELS, fb.AssociatedFileType.TENSOR_VALUE_LABELS)
        label_names = [_text(a.name) for t in ((subgraph.outputTensorMetadata or []) if subgraph else [])
                       for a in (t.associatedFiles or []) if a.type in kinds]
        section = {"name": _text(md.name), "version": _text(md.version), "description": _text(md.description),
                   "normalization": {"mean": [float(v) for v in norm.mean], "std": [float(v) for v in norm.std]}
                   if norm is not None else None,
                   "color_space": {v: k for k, v in vars(fb.ColorSpaceType).items()}.get(color),
                   "associated_files": _zipped_names(tfl.content)}
    except MobilekitError:
        raise
    except Exception as e:  # the generated reader raises anything on bad offsets
        raise MobilekitError(f"unreadable TFLite metadata ({type(e).__name__})") from None
    section["labels"] = _labels(tfl.content, label_names[0]) if label_names else None
    return section


def _text(value) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _zipped_names(content: bytes) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            return z.namelist()
    except Exception:  # an untrusted file's zip: bad, encrypted, truncated, or not one
        return []


def _labels(content: bytes, name: str) -> list[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            info = z.getinfo(name)
            if info.file_size > 1 << 20:
                return None
            return z.read(name).decode("utf-8").splitlines()
    except Exception:  # an untrusted file's zip: bad, encrypted, truncated, or not text
        return None


def runtimes(tfl, metadata: dict | None) -> dict[str, str]:
    """Which app runtimes take this file as an image classifier, or as an object detector when it ends in TFLite's
    detection post-processing: ``{runtime: "yes..." | "no: why"}``.

    The rules are the ImageClassifier's documented model requirements (MediaPipe Tasks and the Task Library
    share them): one RGB input [1, H, W, 3] of uint8 or float32 (float32 needs normalisation in the
    metadata), an output [1, N] or [1, 1, 1, N] of uint8 or float32; class names only from metadata labels.
    """
    from mobilekit.tflite_file import POSTPROCESS_OP

    op = next((op for op in tfl.ops if op.name == POSTPROCESS_OP), None)
    if op is not None:
        return _detector_runtimes(tfl, metadata, op)
    problems = _image_input_problems(tfl, metadata)
    classes = [t for t in tfl.outputs if t.dtype in APP_TYPES and (len(t.shape) == 2 and t.shape[0] == 1
                                                                   or tuple(t.shape[:3]) == (1, 1, 1))]
    if not classes:
        problems.append("no uint8 or float32 output [1, N]" + (f" (output {tfl.outputs[0].dtype.lower()})"
                                                                 if tfl.outputs else ""))
    if problems:
        verdict = "no: " + "; ".join(problems)
    else:
        verdict = "yes, " + (f"class names from its {len(metadata['labels'])} labels" if metadata
                             and metadata["labels"] else "index only (no labels in TFLite metadata)")
    return {"LiteRT interpreter": "yes", "MediaPipe Tasks ImageClassifier": verdict,
            "TFLite Task Library ImageClassifier": verdict}


def _image_input_problems(tfl, metadata: dict | None) -> list[str]:
    """What keeps the file's input from being the one RGB image the runtimes' vision tasks take."""
    if len(tfl.inputs) != 1:
        return [f"{len(tfl.inputs)} inputs, not one image"]
    problems = []
    t = tfl.inputs[0]
    if len(t.shape) != 4 or t.shape[0] != 1 or t.shape[3] != 3:
        problems.append(f"input {list(t.shape)}, not [1, H, W, 3]")
    if t.dtype not in APP_TYPES:
        problems.append(f"input {t.dtype.lower()}: it takes uint8 or float32")
    elif t.dtype == "FLOAT32" and not (metadata and metadata["normalization"]):
        problems.append("float32 input without normalisation in TFLite metadata")
    return problems


def _detector_runtimes(tfl, metadata: dict | None, op) -> dict[str, str]:
    """The ObjectDetector's rules (MediaPipe Tasks and the Task Library): the image input, the post-processing op's
    four outputs listed in its order (boxes, classes, scores, count), and metadata naming them, with labels."""
    problems = _image_input_problems(tfl, metadata)
    if [t.index for t in tfl.outputs] != list(op.outputs):
        problems.append("outputs not in the post-processing op's order (boxes, classes, scores, count)")
    if not metadata:
        problems.append("no TFLite metadata (it names the four outputs)")
    verdict = "no: " + "; ".join(problems) if problems else (
        "yes, " + (f"class names from its {len(metadata['labels'])} labels" if metadata.get("labels")
                   else "index only (no labels in TFLite metadata)"))
    return {"LiteRT interpreter": "yes", "MediaPipe Tasks ObjectDetector": verdict,
            "TFLite Task Library ObjectDetector": verdict}


def section(tfl) -> dict:
    """report.json's and bench's ``app``: ``{"metadata": read(tfl) or None, "runtimes": runtimes(...), "io": the
    input and output types and the interface ops around the body (TfliteFile.interface)}``; metadata that does not
    read is ``{"error": why}`` there, never an exception (bench reads untrusted files)."""
    interface = tfl.interface
    io = {"input": interface["input"], "output": interface["output"], "interface_ops": len(interface["ops"])}
    try:
        metadata = read(tfl)
    except MobilekitError as e:
        return {"metadata": {"error": str(e)}, "runtimes": runtimes(tfl, None), "io": io}
    return {"metadata": metadata, "runtimes": runtimes(tfl, metadata), "io": io}


def summary(app: dict) -> list[tuple[str, str]]:
    """(label, text) rows for report.md and bench's table: the metadata in a line, then each runtime's verdict."""
    md = app.get("metadata")
    if md is None:
        line = "none"
    elif "error" in md:
        line = md["error"]
    else:
        norm = md["normalization"]
        line = ", ".join(x for x in (f"{md['name']} ({md['version']})",
                                     f"input (pixel - {norm['mean'][0]:g}) / {norm['std'][0]:g}" if norm else "",
                                     f"{len(md['labels'])} labels" if md["labels"] else "no labels") if x)
    fits = [(f"fits {k}", v) for k, v in app["runtimes"].items() if k != "LiteRT interpreter"]
    io = app.get("io")  # reports written before the interface was recorded have none
    if not io:
        return [("TFLite metadata", line), *fits]
    text = f"{io['input']} in, {io['output']} out"
    if io.get("interface_ops"):
        text += f" ({io['interface_ops']} interface ops around the quantized body"
        if "images" in io:
            text += (f"; the same answers as the {io['checked_against']} file on {io['identical']:,} of "
                     f"{io['images']:,} test inputs")
        text += ")"
    return [("TFLite metadata", line), ("input / output", text), *fits]
