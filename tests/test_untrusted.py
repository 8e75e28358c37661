"""Untrusted files never run code: Keras teachers with a code-carrying Lambda (.h5 and .keras), crafted legacy
PyTorch checkpoints (every pickle record), and class folder names that would shift labels.txt."""

import pickle
import struct

import numpy as np
import pytest

from mobilekit.errors import MobilekitError


def evil_model(marker):
    """A tiny Keras model whose Lambda writes ``marker`` whenever it is called (loading rebuilds the graph)."""
    from mobilekit.backend import keras

    code = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(eval(code), name="innocent")(inputs)  # noqa: S307 - the attack under test
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_a_code_carrying_teacher_is_refused_and_nothing_runs(cli_error, tmp_path, suffix):
    marker = tmp_path / "ran.txt"
    model = evil_model(marker)
    marker.unlink()  # building the model called the Lambda once
    path = tmp_path / f"evil{suffix}"
    model.save(path)
    out = tmp_path / "out"
    line = cli_error("build", "--teacher", path, "--out", out)
    assert "Lambda 'innocent'" in line and "--trust-teacher" in line, line
    assert not marker.exists() and not out.exists()
    # The teeth: the same file really runs its code when loaded the trusting way (what --trust-teacher does).
    from mobilekit.backend import keras
    from mobilekit.model_files import check_keras_file

    check_keras_file(str(path), trust=True)
    keras.models.load_model(path, compile=False, safe_mode=False)
    assert marker.read_text() == "ran"


def test_a_clean_keras_teacher_passes_the_inspection(tmp_path):
    from mobilekit.backend import keras
    from mobilekit.model_files import check_keras_file

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    for suffix in (".h5", ".keras"):
        model.save(tmp_path / f"ok{suffix}")
        assert check_keras_file(str(tmp_path / f"ok{suffix}")).name == f"ok{suffix}"
    (tmp_path / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(MobilekitError, match="not a readable .h5 Keras model"):
        check_keras_file(str(tmp_path / "weights.h5"))


class _RunsCode:
    """A pickle that, loaded with plain pickle.load, calls exec() and writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def _legacy_checkpoint(records):
    return b"".join(pickle.dumps(r, protocol=2) for r in records)


@pytest.mark.parametrize("position", ["magic", "protocol", "sys_info", "state_dict", "keys"])
def test_a_crafted_legacy_checkpoint_runs_nothing_in_any_record(tmp_path, position):
    from mobilekit.weights.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, load_state_dict

    marker = tmp_path / "ran.txt"
    records = {"magic": MAGIC_NUMBER, "protocol": PROTOCOL_VERSION, "sys_info": {"little_endian": True},
               "state_dict": {}, "keys": []}
    records[position] = _RunsCode(marker)
    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_checkpoint(records.values()))
    with pytest.raises(MobilekitError, match="evil.pth"):
        load_state_dict(path)
    assert not marker.exists()
    # The teeth: plain pickle runs it.
    with open(path, "rb") as f:
        for _ in records:
            pickle.load(f)
    assert marker.read_text() == "ran"


def test_a_legacy_checkpoint_with_a_lying_storage_size_is_refused_before_reading(tmp_path, monkeypatch):
    """A storage that claims 2**40 elements: refused from the file's size, never read into memory."""
    import collections
    import sys
    import types

    from mobilekit.weights.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, load_state_dict

    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")  # what torch.save references
    torch.FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
    utils._rebuild_tensor_v2 = lambda *a: None
    utils._rebuild_tensor_v2.__module__, utils._rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Storage:
        pass

    class Tensor:
        def __reduce__(self):
            return utils._rebuild_tensor_v2, (Storage(), 0, (4,), (1,), False, collections.OrderedDict())

    class Saver(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 4, None) if isinstance(obj, Storage) else None

    path = tmp_path / "lying.pth"
    with open(path, "wb") as f:
        for part in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(part, f, protocol=2)
        Saver(f, protocol=2).dump(collections.OrderedDict(w=Tensor()))
        pickle.dump(["0"], f, protocol=2)
        f.write(struct.pack("<q", 4) + np.arange(4, dtype=np.float32).tobytes())
    assert load_state_dict(path)["w"].tolist() == [0, 1, 2, 3]  # the well-formed file reads
    data = path.read_bytes()
    path.write_bytes(data[:-16 - 8] + struct.pack("<q", 2**40) + data[-16:])
    with pytest.raises(MobilekitError, match="lying.pth: storage 0 is truncated or mis-sized"):
        load_state_dict(path)


@pytest.mark.parametrize("name", ["dogs\nhorses", "tab\tbed", "bell\x07", "line\u2028sep", "bidi\u202eevil"])
def test_class_folder_names_that_would_break_labels_txt_are_refused(tmp_path, name):
    from mobilekit.data import scan_image_folder

    for c in ("cats", name):
        (tmp_path / c).mkdir()
        for i in range(2):
            (tmp_path / c / f"{i}.png").write_bytes(b"x")
    with pytest.raises(MobilekitError, match="control or line-break character"):
        scan_image_folder(tmp_path)
