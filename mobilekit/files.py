"""Atomic writes: a file goes to a temp file in its folder, then ``os.replace``; a build's folder is staged
as a hidden sibling and swapped in whole (:func:`staged_dir`).

Readers therefore see the old file (or folder) or the complete new one, never a partial artifact; output
paths are checked (:func:`check_output_path`) before any work, without creating anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import tempfile
from pathlib import Path

from mobilekit.errors import MobilekitError


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole (temp file, fsync, rename), creating missing parent folders (an output
    path's folders are checked up front by :func:`check_output_path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove it is writable, or raise MobilekitError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _probe(path)
    except OSError as e:
        raise MobilekitError(f"output folder {str(path)!r} is not writable: {e.strerror or e}") from None
    return path


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder`` (a real test: root passes os.access even on /proc)."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe-")
    os.close(fd)
    os.unlink(probe)


def _existing_ancestor(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path(".")


def check_output_path(path: str | os.PathLike, kind: str = "file", what: str = "output",
                      owned_marker: str | tuple[str, ...] | None = None) -> Path:
    """Check, before any work and without creating anything, that ``path`` can be written as a ``kind``
    ("file" or "dir"): not an existing path of the other kind, its nearest existing folder writable. A
    non-empty existing folder must hold ``owned_marker`` (a file only the same command writes: the folder is
    its earlier output, which the new run replaces or continues) when one is given; any of a tuple of them.

    Raises:
        MobilekitError: naming the path and what is wrong with it.
    """
    text = str(path)
    if not text.strip() or "\x00" in text:
        raise MobilekitError(f"{what} path must name a {kind}; received {text!r}")
    path = Path(path)
    if kind == "file" and (path.is_dir() or text.endswith(os.sep)):
        raise MobilekitError(f"{what} path {text!r} is a folder; name a file")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise MobilekitError(f"{what} folder {text!r} exists and is not a folder")
    markers = (owned_marker,) if isinstance(owned_marker, str) else tuple(owned_marker or ())
    if kind == "dir" and markers and path.is_dir() and any(path.iterdir()) \
            and not any((path / m).is_file() and not (path / m).is_symlink() for m in markers):
        raise MobilekitError(f"{what} folder {text!r} is not empty and holds no {markers[0]} from an earlier "
                             "run of this command; choose an empty or new folder")
    base = _existing_ancestor(path if kind == "dir" else path.parent)
    if not base.is_dir():
        raise MobilekitError(f"{what} path {text!r} is not writable: {str(base)!r} is a file, not a folder")
    try:
        _probe(base)
    except OSError as e:
        raise MobilekitError(f"{what} path {text!r} is not writable ({str(base)!r}: {e.strerror or e})") from None
    return path


def json_with_keys(*keys: str):
    """An ``owned`` test for :func:`check_output_files`: a JSON object holding ``keys`` (the shape the command
    writes)."""
    def owned(path: Path) -> bool:
        from mobilekit.json_files import parse_json

        try:
            doc = parse_json(path.read_bytes(), str(path))
        except (MobilekitError, OSError):
            return False
        return isinstance(doc, dict) and set(keys) <= doc.keys()
    return owned


PNG_SOFTWARE = "mobilekit"  # the PNG text chunk "Software" of every plot the kit writes (its ownership mark)


def png_text(data: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG (``{}`` for anything else)."""
    import struct

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return {}
    out, at = {}, 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"tEXt" and b"\0" in body:
            key, _, value = body.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        if kind in (b"IDAT", b"IEND"):
            break  # matplotlib writes its text chunks before the image data
        at += 12 + length
    return out


def png_by_mobilekit(path: Path) -> bool:
    """An ``owned`` test: a PNG plot the kit wrote (its Software text chunk)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return png_text(head).get("Software", "").startswith(PNG_SOFTWARE)


def text_starting_with(prefix: str):
    """An ``owned`` test: a text file whose first line is ``prefix`` (e.g. a CSV header the command writes)."""
    def owned(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                return f.read(len(prefix.encode()) + 2).decode(errors="replace").startswith(prefix)
        except OSError:
            return False
    return owned


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_files(outputs, inputs=()) -> None:
    """The one rule for the single files a command writes, checked before any work: each ``(flag, path, what,
    owned)`` of ``outputs`` (``path`` None: not asked for) passes :func:`check_output_path`, is none of the
    command's ``inputs`` (``(flag, path)``), is not the path of another output, and, when a file is there already,
    is this command's earlier output (``owned(path)``; ``what`` names that kind of file): a user's own file is never
    replaced.

    Raises:
        MobilekitError: one line naming the flag, the path and the rule.
    """
    seen: list[tuple[str, Path]] = []
    for flag, path, what, owned in outputs:
        if path is None:
            continue
        p = check_output_path(path, "file", flag)
        for other_flag, other in seen:
            if _same_file(p, other):
                raise MobilekitError(f"{other_flag} and {flag} name the same file {str(path)!r}; give each its own")
        for in_flag, in_path in inputs:
            if in_path is not None and _same_file(p, Path(in_path)):
                raise MobilekitError(f"{flag} {str(path)!r} is this command's input ({in_flag}); name another file")
        if (p.exists() or p.is_symlink()) and not (p.is_file() and not p.is_symlink() and owned(p)):
            raise MobilekitError(f"{flag} {str(path)!r} exists and is not {what} written by mobilekit; name a new "
                                 "file or remove it")
        seen.append((flag, p))


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, name: str, what: str):
    """Hold an exclusive OS lock (``flock``) on ``folder/name`` while the block runs; the file keeps the holder's
    pid. The lock dies with the process (kill -9 included); a second holder is refused with one line naming it.

    Raises:
        MobilekitError: another live process holds the lock.
    """
    import fcntl

    path = Path(folder) / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise MobilekitError(f"{what} {str(folder)!r} is in use by another run (pid {holder}); wait for it "
                                 "to finish or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    ok = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0
    return ok


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_process_folders(parent: Path, prefix: str) -> None:
    """Remove the folders in ``parent`` named ``<prefix><pid>[-...]`` whose process is gone (a kill -9 left
    them: staging folders of a build, a sweep point's temporary folder)."""
    for sibling in Path(parent).glob(prefix + "*"):
        pid = sibling.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(sibling, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike):
    """Yield a hidden sibling folder of ``final`` to write into; on success it replaces ``final`` whole (an
    atomic exchange where Linux allows, else two renames), on error it is removed. A killed process leaves
    only a hidden ``.<name>.partial-<pid>-*`` folder, removed by the next run; ``final`` is never partial."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_process_folders(final.parent, f".{final.name}.partial-")
    stage = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-{os.getpid()}-"))
    try:
        yield stage
        os.chmod(stage, 0o755)
        if final.exists() and _exchange(stage, final):
            shutil.rmtree(stage, ignore_errors=True)  # now the previous output
        else:
            old = None
            if final.exists():
                old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-{os.getpid()}-old-"))
                os.replace(final, old / final.name)
            os.replace(stage, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
