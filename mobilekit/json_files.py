"""Untrusted JSON, read in one place: a size limit before reading, a depth limit while parsing, duplicate keys
refused, and the document checked against the shape its reader expects (:func:`check_shape`).

Every JSON file a user can hand the kit (a build's report.json, a sweep's results.json and point.json, recipe
files, Model Explorer node data, bench profiles, a Keras file's config) goes through :func:`read_json` or
:func:`parse_json`, so a damaged, hostile or old file fails here with one line naming the file and the part.
"""

from __future__ import annotations

import os
from pathlib import Path

from mobilekit.errors import MobilekitError

MAX_JSON_BYTES = 64 * 2**20  # the largest file the kit writes (a sweep's results.json) is far below this
MAX_JSON_DEPTH = 32  # measured: a Keras model's config nests 8 deep, report.json 5, a sweep's results.json 4


class Each:
    """A shape for a JSON object with any keys whose values all have ``shape`` (e.g. node data's results)."""

    def __init__(self, shape):
        self.shape = shape


NUMBER = (int, float)


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _depth(doc) -> int:
    """The nesting depth of a parsed document (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def parse_json(text: str | bytes, what: str):
    """``text`` parsed, or MobilekitError naming ``what`` (e.g. ``"--profile 'x.json'"``) and what is wrong."""
    import json

    if len(text) > MAX_JSON_BYTES:
        raise MobilekitError(f"{what} is larger than {MAX_JSON_BYTES // 2**20} MiB; not read")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise MobilekitError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels; not read") from None
    except (ValueError, UnicodeDecodeError) as e:
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise MobilekitError(f"{what} is not valid JSON ({reason})") from None
    if _depth(doc) > MAX_JSON_DEPTH:
        raise MobilekitError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels; not read")
    return doc


def read_json(path: str | os.PathLike, what: str, shape=None):
    """The JSON document at ``path``, checked against ``shape`` (see :func:`check_shape`) when one is given.

    Raises:
        MobilekitError: missing, not a file, too large, not JSON, too deep, or not of the shape; one line naming
            ``what`` and ``path``.
    """
    p = Path(path)
    label = f"{what} {str(path)!r}"
    if not p.is_file():
        raise MobilekitError(f"{what}: no such file {str(path)!r}")
    if p.stat().st_size > MAX_JSON_BYTES:
        raise MobilekitError(f"{label} is larger than {MAX_JSON_BYTES // 2**20} MiB; not read")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise MobilekitError(f"{label} cannot be read: {e.strerror or e}") from None
    doc = parse_json(raw, label)
    if shape is not None:
        check_shape(doc, shape, label)
    return doc


def read_record(path: str | os.PathLike, cls, what: str, shape=None):
    """The JSON file at ``path`` read as the typed record ``cls`` (a mobilekit.schema class with ``from_dict``):
    the one place a damaged, foreign or old report.json / results.json / point.json is refused.

    Raises:
        MobilekitError: one line naming ``what``, ``path`` and the first part that is not the record.
    """
    from mobilekit.schema import SchemaError

    doc = read_json(path, what, shape)
    try:
        return cls.from_dict(doc)
    except SchemaError as e:
        raise MobilekitError(f"{what} {str(path)!r} is not a {cls.__name__}: {e}"[:400]) from None


def _type_name(types: tuple) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
             bool: "true or false", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types if not (t is int and float in types)))


def _matches(value, types: tuple) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def check_shape(value, shape, what: str, where: str = "the document") -> None:
    """Check ``value`` against ``shape``: a type or tuple of types (``None`` for null; bools are never numbers); a
    dict ``{key: shape}`` (a key ending in ``?`` is optional; other keys are allowed); a one-item list ``[shape]``
    (every item); ``Each(shape)`` (an object whose every value has ``shape``).

    Raises:
        MobilekitError: ``"{what}: {where} must be ...; found ..."`` at the first mismatch.
    """
    stack = [(value, shape, where)]
    while stack:
        v, s, at = stack.pop()
        if isinstance(s, dict):
            if not isinstance(v, dict):
                raise MobilekitError(f"{what}: {at} must be an object; found {_found(v)}")
            for key, sub in s.items():
                name = key.rstrip("?")
                if name in v:
                    stack.append((v[name], sub, f"{at}.{name}" if at != "the document" else name))
                elif not key.endswith("?"):
                    raise MobilekitError(f"{what}: {at} has no {name!r}")
        elif isinstance(s, Each):
            if not isinstance(v, dict):
                raise MobilekitError(f"{what}: {at} must be an object; found {_found(v)}")
            stack.extend((item, s.shape, f"{at}[{k!r}]") for k, item in v.items())
        elif isinstance(s, list):
            if not isinstance(v, list):
                raise MobilekitError(f"{what}: {at} must be a list; found {_found(v)}")
            stack.extend((item, s[0], f"{at}[{i}]") for i, item in enumerate(v))
        elif isinstance(s, tuple) and any(isinstance(t, (dict, list, Each)) for t in s):
            # a structure or something else (e.g. null): the structure unless the value is one of the others
            structure = next(t for t in s if isinstance(t, (dict, list, Each)))
            others = tuple(type(None) if t is None else t for t in s if not isinstance(t, (dict, list, Each)))
            if not _matches(v, others):
                stack.append((v, structure, at))
        else:
            types = tuple(type(None) if t is None else t for t in (s if isinstance(s, tuple) else (s,)))
            if not _matches(v, types):
                raise MobilekitError(f"{what}: {at} must be {_type_name(types)}; found {_found(v)}")


def _found(v) -> str:
    if isinstance(v, (dict, list)):
        return "an object" if isinstance(v, dict) else "a list"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
