"""A Keras model file -> a verified full-int8 .tflite at batch 1 (mobilekit's conversion path).

Usage: python converters/keras_to_int8.py MODEL.keras|MODEL.h5 OUT.tflite
           [--calibration random|fashion-mnist|DIR] [--samples 256] [--seed 0] [--io uint8|int8|float32]

The model is loaded without running code from the file: ``.keras`` files in Keras' safe mode, and
``.h5`` files only after their stored config is checked to hold no Lambda layer (a legacy .h5 Lambda
would run its code while loading). Calibration images: ``fashion-mnist`` (installed data, resized
to the model's input), an image folder (one sub-folder per class), or ``random`` (uniform [0, 1);
fine for sizes and latency, not for accuracy). The output is written atomically and verified from
the flatbuffer: no float tensor or op left between its input and output (mobilekit.convert), which are uint8
(pixels in, what MediaPipe Tasks takes), int8 or float32 (``--io``, mobilekit.app_io); it carries TFLite
metadata (the model's name and the input normalisation; no labels: the classes are the model's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mobilekit.app_io import IO_TYPES, with_io


def _class_names(node) -> set[str]:
    if isinstance(node, dict):
        names = {node["class_name"]} if isinstance(node.get("class_name"), str) else set()
        return names.union(*(_class_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_class_names(v) for v in node))
    return set()


def _refuse_code(path: Path) -> None:
    """A legacy .h5 model runs a Lambda layer's stored code while loading: read its config first."""
    from mobilekit.errors import MobilekitError

    if path.suffix.lower() != ".h5":
        return
    import h5py

    try:
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
    except OSError as e:
        raise MobilekitError(f"{path} is not an HDF5 file ({e})") from None
    if config is None:
        raise MobilekitError(f"{path} holds no model config (weights only?): pass a full Keras model file")
    try:
        names = _class_names(json.loads(config.decode() if isinstance(config, bytes) else str(config)))
    except ValueError:
        raise MobilekitError(f"{path} has an unreadable model config") from None
    if "Lambda" in names:
        raise MobilekitError(f"{path} has a Lambda layer, whose code would run while loading: refused")


def load(path: Path):
    """The Keras model in ``path``, loaded without executing code stored in it."""
    from mobilekit.backend import keras
    from mobilekit.errors import MobilekitError
    from mobilekit.layers import PASS_THROUGH_LAYERS

    if not path.is_file():
        raise MobilekitError(f"no such model file: {str(path)!r}")
    _refuse_code(path)
    custom = {c.__name__: c for c in PASS_THROUGH_LAYERS}
    try:
        if path.suffix.lower() == ".keras":
            return keras.models.load_model(path, compile=False, custom_objects=custom, safe_mode=True)
        return keras.models.load_model(path, compile=False, custom_objects=custom)
    except Exception as e:  # h5py / Keras raise many types for a bad file
        raise MobilekitError(f"{path} is not a loadable Keras model ({type(e).__name__}: "
                             f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else ''})") from None


def calibration(source: str, shape: tuple[int, int, int], samples: int, seed: int):
    """Float calibration images at the model's input shape (the build's preprocessing)."""
    import numpy as np

    from mobilekit import data

    h, w, c = shape
    if h != w:
        from mobilekit.errors import MobilekitError
        raise MobilekitError(f"the model input {shape} is not square; mobilekit's data resize makes squares")
    if source == "random":
        return np.random.default_rng(seed).random((samples, h, w, c), np.float32)
    ds = data.load(None if source == "fashion-mnist" else source, h, c, seed=seed,
                   **({"limit_train": samples, "limit_test": 1} if source == "fashion-mnist" else {}))
    idx = np.random.default_rng(seed).permutation(len(ds.x_train))[:samples]
    return data.to_float(ds.x_train[np.sort(idx)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="a .keras or .h5 Keras model file")
    p.add_argument("out", type=Path, help="the int8 .tflite to write")
    p.add_argument("--calibration", default="random", help="random, fashion-mnist, or an image folder")
    p.add_argument("--samples", type=int, default=256, help="calibration images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--io", choices=IO_TYPES, default=IO_TYPES[0],
                   help="input and output type around the int8 body (default: %(default)s)")
    args = p.parse_args(argv)
    from mobilekit import data
    from mobilekit.app_metadata import image_classifier
    from mobilekit.files import write_bytes_atomic
    from mobilekit.convert import convert_int8
    from mobilekit.errors import MobilekitError
    from mobilekit.tflite_file import TfliteFile

    try:
        if not 1 <= args.samples <= 100000:
            raise MobilekitError(f"--samples must be in [1, 100000]; received {args.samples}")
        model = load(args.model)
        shape = tuple(model.input_shape[1:])
        content = convert_int8(model, calibration(args.calibration, shape, args.samples, args.seed))
        content = with_io(content, args.io, pixels=(data.SCALE, data.OFFSET))
        content = image_classifier(  # TFLite metadata: the calibration's preprocessing; the classes are unknown here
            content, name=args.model.stem,
            description=f"{args.model.name} converted to full int8 by mobilekit (no labels)",
            preprocessing={"scale": data.SCALE, "offset": data.OFFSET}, labels=None)
        write_bytes_atomic(args.out, content)
    except MobilekitError as e:
        print(f"keras_to_int8: error: {e}", file=sys.stderr)
        return 2
    f = TfliteFile(content)
    q = f.inputs[0]
    quantization = f" scale {float(q.scale[0]):.6g} zero point {int(q.zero_point[0])}" if q.scale is not None else ""
    print(f"{args.out}: {len(content):,} bytes, full int8 (input {q.dtype.lower()}{list(q.shape)}{quantization}), "
          f"ops {dict(sorted(f.op_counts().items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
