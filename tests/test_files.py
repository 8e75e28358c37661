"""Atomic writes: an interrupted write leaves the old file and no temp file."""

import os

import pytest

from mobilekit import files
from mobilekit.errors import MobilekitError


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "model.tflite"
    files.write_bytes_atomic(p, b"old")
    files.write_bytes_atomic(p, b"new contents")
    assert p.read_bytes() == b"new contents"
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


def test_interrupted_write_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "model.tflite"
    files.write_bytes_atomic(p, b"old")

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        files.write_bytes_atomic(p, b"half")
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


def test_interrupted_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(files.os, "replace", lambda s, d: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        files.write_bytes_atomic(tmp_path / "m.tflite", b"data")
    assert os.listdir(tmp_path) == []


def test_ensure_writable_dir(tmp_path):
    assert files.ensure_writable_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("")
    with pytest.raises(MobilekitError, match="not writable"):
        files.ensure_writable_dir(tmp_path / "f" / "sub")
