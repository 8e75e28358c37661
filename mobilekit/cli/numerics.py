"""`mobilekit numerics INT8.tflite --reference FLOAT`: per-layer int8 error against the float model."""

from __future__ import annotations

from mobilekit._checks import LIMITS
from mobilekit.cli.flags import number
from mobilekit.errors import MobilekitError


def add_parser(sub) -> None:
    n = sub.add_parser("numerics", help="per-layer int8 error against the float model (SQNR, cosine, ...)",
                       description="Run an int8 .tflite and its float reference on the same images with every "
                                   "intermediate tensor kept, and compare each layer's output: SQNR, cosine, "
                                   "max/mean absolute error, the int8 scale, and the error rounding alone would "
                                   "give. After `mobilekit build`: `mobilekit numerics build/X/X.tflite "
                                   "--reference build/X/X_float.tflite`.")
    n.add_argument("int8", metavar="INT8.tflite", help="the int8 file")
    n.add_argument("--reference", required=True, metavar="FLOAT",
                   help="the float model it came from: a float .tflite, or a .keras / .h5 file (converted first)")
    n.add_argument("--data", default=None, metavar="fashion-mnist|photos|DIR",
                   help="images to compare on (default: fashion-mnist for 10 classes, else photos)")
    n.add_argument("--images", type=number(int, 1, high=100_000, what="--images"), default=100,
                   help="how many images (default: %(default)s)")
    n.add_argument("--json", default=None, metavar="OUT.json", help="write the comparison as JSON")
    n.add_argument("--plot", default=None, metavar="OUT.png", help="write SQNR by layer as a PNG plot")
    n.add_argument("--model-explorer", default=None, metavar="OUT.json",
                   help="write each layer's SQNR as Model Explorer node data: `mobilekit view INT8.tflite "
                        "--node-data OUT.json`")
    n.add_argument("--model-explorer-rounding", default=None, metavar="OUT.json",
                   help="write each layer's error over its rounding floor as Model Explorer node data")
    n.add_argument("--trust-reference", action="store_true",
                   help="load a Keras --reference whose layers carry Python code (Lambda)")
    n.add_argument("--seed", type=number(int, 0, high=LIMITS["seed"], what="--seed"), default=0,
                   help="seed of the photo views and folder split (default: %(default)s)")


def _read_tflite(path: str, what: str) -> bytes:
    from pathlib import Path

    from mobilekit.tflite_file import TfliteFile

    content = Path(_existing(path, what)).read_bytes()
    try:
        TfliteFile(content)  # a clear error for a file that is not a .tflite
    except MobilekitError as e:
        raise MobilekitError(f"{what} {path!r}: {e}") from None
    return content


def _existing(path: str, what: str) -> str:
    from pathlib import Path

    if not Path(path).is_file():
        raise MobilekitError(f"no such {what} file: {path!r}")
    return path


def _reference(path: str, trust: bool) -> bytes:
    from mobilekit.model_files import KERAS_SUFFIXES, check_keras_file

    if not path.lower().endswith(KERAS_SUFFIXES):
        return _read_tflite(path, "--reference")
    check_keras_file(path, trust, "--reference", "--trust-reference")  # nothing runs before it says: data only
    from mobilekit.backend import keras
    from mobilekit.convert import convert_float
    from mobilekit.layers import PASS_THROUGH_LAYERS

    model = keras.models.load_model(path, compile=False, safe_mode=not trust,
                                    custom_objects={c.__name__: c for c in PASS_THROUGH_LAYERS})
    return convert_float(model)


def output_files(args) -> list[tuple]:
    """numerics' outputs for ``check_output_files``: each flag, its path, and how an earlier one is recognised."""
    from mobilekit.files import json_with_keys, png_by_mobilekit

    node_data = ("Model Explorer node data", json_with_keys("name", "results", "thresholds"))
    return [("--json", args.json, "a numerics JSON", json_with_keys("int8", "reference", "layers")),
            ("--plot", args.plot, "a numerics plot", png_by_mobilekit),
            ("--model-explorer", args.model_explorer, *node_data),
            ("--model-explorer-rounding", args.model_explorer_rounding, *node_data)]


def run(args) -> int:
    from mobilekit.files import check_output_files, write_json_atomic
    from mobilekit.numerics import load_images, numerics
    from mobilekit.report import numerics_plot, numerics_table
    from mobilekit.tflite_file import TfliteFile

    check_output_files(output_files(args), inputs=[("INT8.tflite", args.int8), ("--reference", args.reference)])
    if args.data not in (None, "fashion-mnist", "photos"):
        from mobilekit.data import scan_image_folder

        scan_image_folder(args.data)
    _existing(args.int8, "int8")
    _existing(args.reference, "--reference")
    content = _read_tflite(args.int8, "int8")
    reference = _reference(args.reference, args.trust_reference)
    f = TfliteFile(content)
    shape = f.inputs[0].shape[1:]
    classes = int(f.outputs[0].shape[-1]) if f.outputs[0].shape else 0
    source = args.data or ("fashion-mnist" if classes == 10 else "photos")
    described, images = load_images(source, shape, args.images, args.seed)
    doc = {"int8": args.int8, "reference": args.reference, "data": described,
           **numerics(content, reference, images, same_model=True)}
    numerics_table(doc)
    if args.json:
        write_json_atomic(args.json, doc)
    if args.plot:
        numerics_plot(doc, args.plot)
    if args.model_explorer or args.model_explorer_rounding:
        from mobilekit.model_explorer import numerics_node_data, write_node_data

        for path, data in zip((args.model_explorer, args.model_explorer_rounding),
                              numerics_node_data(content, doc["layers"])):
            if path:
                write_node_data(path, data)
    return 0
