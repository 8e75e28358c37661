"""Untrusted Keras model files (``--teacher``): inspected before anything loads them.

A Keras file can carry Python code: a ``Lambda`` layer stores its function's bytecode, and loading a
legacy ``.h5`` file runs it (tf_keras' ``safe_mode`` only guards the ``.keras`` format); a SavedModel
folder is a TensorFlow graph, whose ops can read and write files. So mobilekit reads the model's
configuration as data first (``config.json`` in the ``.keras`` zip, the ``model_config`` attribute of an
``.h5`` file; nothing is deserialised) and refuses code-carrying layers unless the user vouches for the
file (``--trust-teacher``); SavedModel folders are refused. No TensorFlow import here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mobilekit.errors import MobilekitError
from mobilekit.json_files import parse_json

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
# Layers whose configuration holds Python code (marshalled bytecode or a source string).
CODE_LAYERS = ("Lambda",)
MAX_CONFIG_BYTES = 64 * 1024 * 1024


def _config_of(path: Path, what: str) -> dict:
    suffix = path.suffix.lower()
    try:
        if suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                info = z.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    raise MobilekitError(f"{what} {str(path)!r}: config.json of {info.file_size:,} bytes")
                return parse_json(z.read(info), f"{what} {str(path)!r}: config.json")
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise MobilekitError(f"{what} {str(path)!r} is an HDF5 file without a model (weights only?)")
            return parse_json(raw, f"{what} {str(path)!r}: model_config")
    except MobilekitError:
        raise
    except Exception as e:  # zipfile, h5py and json raise many types for a bad file
        raise MobilekitError(f"{what} {str(path)!r} is not a readable {suffix} Keras model "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'})") from None


def code_layers(config) -> list[str]:
    """Names of the layers in a model configuration whose config carries Python code."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") in CODE_LAYERS:
                cfg = node.get("config") if isinstance(node.get("config"), dict) else {}
                found.append(f"{node['class_name']} {cfg.get('name', '?')!r}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def check_keras_file(path: str, trust: bool = False, what: str = "--teacher",
                     trust_flag: str = "--trust-teacher") -> Path:
    """Refuse a Keras model file that is missing, not a Keras file, a SavedModel folder, or (unless ``trust``)
    one whose layers carry Python code; returns its path. ``what`` and ``trust_flag`` name the flags in the
    messages (``--teacher`` / ``--trust-teacher``, or numerics' ``--reference`` / ``--trust-reference``).

    Raises:
        MobilekitError: naming the file and, for code, the layers.
    """
    p = Path(path)
    if p.is_dir():
        raise MobilekitError(f"{what} {path!r} is a folder (SavedModel?); SavedModels are not loaded because "
                             "their graph ops can touch files: save the model as a .keras file")
    if not p.is_file():
        raise MobilekitError(f"{what} model file not found: {path!r}")
    if p.suffix.lower() not in KERAS_SUFFIXES:
        raise MobilekitError(f"{what} {path!r}: a model file must end in {', '.join(KERAS_SUFFIXES)}")
    layers = code_layers(_config_of(p, what))
    if layers and not trust:
        raise MobilekitError(f"{what} {path!r} holds {', '.join(layers[:3])}"
                             f"{f' and {len(layers) - 3} more' if len(layers) > 3 else ''}, whose Python code "
                             f"would run while loading; refused (pass {trust_flag} only for a file you made)")
    return p
