"""Google's Model Explorer: the .tflite graph in a browser, with the kit's numbers on its nodes.

Model Explorer overlays "node data" on a graph: a JSON document per metric, ``{"name", "results": {key:
{"value"}}, "thresholds": [{"value", "bgColor"}]}``, where a key is one of a node's output tensor names (its
``tensor_name`` in the graph Model Explorer builds from the flatbuffer) and a node whose value is <= a threshold
takes that threshold's colour (the first that holds). mobilekit writes these from what it measured:

- ``numerics --model-explorer OUT.json``: each compared layer's SQNR (dB) against the float reference, and
  ``--model-explorer-rounding OUT2.json``: its error over what rounding alone at its own scale would give.
- ``mobilekit view BUILD_DIR``: the build's SQNR (report.json ``numerics``), weight sparsity (``sparsity``),
  the precision each op computes in (``precision``: 8, 16 or 32 bits) and, with ``--profile BENCH.json``,
  the per-op time of ``mobilekit bench --profile``.

Only ``view`` needs the optional extra (``pip install 'mobilekit[view]'``); the JSON is written without it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mobilekit.errors import MobilekitError
from mobilekit.json_files import NUMBER, Each

# SQNR colours: the worst band first (red), then orange, yellow; good layers green.
SQNR_THRESHOLDS = [{"value": 10, "bgColor": "#d32f2f"}, {"value": 20, "bgColor": "#f57c00"},
                   {"value": 30, "bgColor": "#fbc02d"}, {"value": 1000, "bgColor": "#81c784"}]
RATIO_THRESHOLDS = [{"value": 2, "bgColor": "#81c784"}, {"value": 10, "bgColor": "#fbc02d"},
                    {"value": 100, "bgColor": "#f57c00"}, {"value": 1e12, "bgColor": "#d32f2f"}]
BITS_THRESHOLDS = [{"value": 8, "bgColor": "#81c784"}, {"value": 16, "bgColor": "#fbc02d"},
                   {"value": 32, "bgColor": "#d32f2f"}]
SPARSITY_THRESHOLDS = [{"value": 0.25, "bgColor": "#e0e0e0"}, {"value": 0.5, "bgColor": "#aed581"},
                       {"value": 1.0, "bgColor": "#2e7d32"}]
PRECISION_BITS = {"int8": 8, "int16": 16, "float": 32}

# What `view` reads from users' files (mobilekit.json_files shapes): node data and a bench profile.
_THRESHOLDS = [{"value": NUMBER, "bgColor": str}]
NODE_DATA_SHAPE = {"name?": str, "results": Each({"value": (*NUMBER, None)}), "thresholds?": _THRESHOLDS}
PROFILE_SHAPE = {"models": [{"size_bytes?": (int, None), "profile?": (
    {"ops?": ([{"index?": (int, None), "ms?": (*NUMBER, None)}], None)}, None)}]}


def node_data(content: bytes, name: str, values: dict[str, float], thresholds: list[dict]) -> dict:
    """Model Explorer's node data for ``content``'s graph: ``values`` ({layer key: number}) on every op output of
    that layer. Layers the file does not have are left out."""
    from mobilekit.layer_map import LayerMap

    keys = LayerMap.of(content).tensor_names
    results = {t: {"value": float(v)} for layer, v in values.items() if v is not None for t in keys.get(layer, [])}
    return {"name": name, "results": results, "thresholds": thresholds}


def numerics_node_data(content: bytes, layers: list[dict]) -> tuple[dict, dict]:
    """(SQNR node data, error-over-rounding node data) from ``mobilekit.numerics``' layers."""
    sqnr = node_data(content, "int8 SQNR vs float (dB)", {r["name"]: r["sqnr_db"] for r in layers}, SQNR_THRESHOLDS)
    ratio = node_data(content, "error / rounding floor", {r["name"]: r["error_vs_rounding"] for r in layers},
                      RATIO_THRESHOLDS)
    return sqnr, ratio


def build_overlays(report: dict | None, content: bytes, profile: dict | None = None) -> list[dict]:
    """The node data of a build (``report``; None for a bare .tflite): SQNR, weight sparsity, precision per op,
    and per-op time from a bench profile."""
    report = report or {}
    out = []
    sqnr = (report.get("numerics") or {}).get("layers_sqnr_db")
    if sqnr:
        out.append(node_data(content, "int8 SQNR vs float (dB)", sqnr, SQNR_THRESHOLDS))
    per_layer = (report.get("sparsity") or {}).get("per_layer") or {}
    if per_layer:
        out.append(node_data(content, "weight sparsity", _by_file_layer(content, per_layer), SPARSITY_THRESHOLDS))
    precision = (report.get("precision") or {}).get("layers")
    if precision:
        out.append(node_data(content, "precision (bits)", {k: PRECISION_BITS[v] for k, v in precision.items()},
                             BITS_THRESHOLDS))
    if profile is not None:
        out.append(profile_node_data(content, profile))
    return out


def _by_file_layer(content: bytes, per_layer: dict) -> dict[str, float]:
    """report.json's per-layer sparsity ({Keras layer: {...}}) keyed by the file's layer keys (the layer each
    key's weights came from)."""
    from mobilekit.layer_map import LayerMap

    return {key: per_layer[layer]["sparsity"] for key, layer in LayerMap.of(content).keras_layers(per_layer).items()}


def profile_node_data(content: bytes, bench: dict) -> dict:
    """Per-op time (ms) of ``mobilekit bench --profile``'s JSON for the model whose size matches ``content``."""
    from mobilekit.layer_map import LayerMap

    models = [m for m in bench.get("models", []) if m.get("profile") and m.get("size_bytes") == len(content)]
    if not models:
        raise MobilekitError("--profile: the bench JSON has no profile of this model (run `mobilekit bench "
                             "MODEL.tflite --profile --json OUT.json` on the same file)")
    layers = LayerMap.of(content)
    file_ops = layers.file.ops
    values: dict[str, float] = {}
    for row in models[0]["profile"].get("ops") or []:
        i = row.get("index")
        if isinstance(i, int) and 0 <= i < len(file_ops) and file_ops[i].outputs and row.get("ms") is not None:
            key = layers.op_key(file_ops[i])
            values[key] = values.get(key, 0.0) + float(row["ms"])
    top = max(values.values(), default=1.0) or 1.0
    return node_data(content, "time per op (ms)", values, [{"value": top / 4, "bgColor": "#81c784"},
                                                          {"value": top / 2, "bgColor": "#fbc02d"},
                                                          {"value": top, "bgColor": "#d32f2f"}])


def write_node_data(path: str | Path, doc: dict) -> Path:
    from mobilekit.files import write_json_atomic

    return write_json_atomic(path, doc)


def resolve_target(target: str) -> tuple[Path, bytes, dict | None]:
    """(the .tflite to show, its bytes, its build report or None) for ``mobilekit view``'s argument.

    Raises:
        MobilekitError: not a .tflite and not a complete build folder.
    """
    from mobilekit.tflite_file import TfliteFile

    p = Path(target)
    if p.is_dir():
        from mobilekit.export_android import read_build

        report, content, _ = read_build(p)  # report.json, the .tflite matching its sha256, labels
        return p / Path(report["files"]["tflite"]).name, content, report
    if not p.is_file():
        raise MobilekitError(f"no build folder or .tflite file at {target!r}")
    content = p.read_bytes()
    try:
        TfliteFile(content)
    except MobilekitError as e:
        raise MobilekitError(f"{target!r} is not a build folder or a .tflite file ({e})") from None
    return p, content, None


def _resolve(host: str, port: int) -> list[tuple]:
    import socket

    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as e:
        raise MobilekitError(f"--host {host!r} does not resolve to an address ({e})") from None


DEFAULT_PORTS = range(8080, 8100)  # Model Explorer's own choice when no port is named


def _bindable(sockaddr, family) -> OSError | None:
    import socket

    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server (werkzeug) binds
        try:
            s.bind(sockaddr)
        except OSError as e:
            return e
    return None


def check_server_address(host: str, port: int | None, allow_remote: bool) -> tuple[int, str | None]:
    """(the port to serve on, the warning an allowed remote address deserves), checked before anything starts: a
    ``--host`` that does not resolve, one other machines can reach without ``allow_remote``, and a port that
    cannot be bound are refused; no ``port``: the first free one of 8080-8099.

    Model Explorer serves more than the graph (its ``/api/v1/read_text_file?path=`` returns any file the server
    process can read), so it stays on the loopback interface unless the user says otherwise.

    Raises:
        MobilekitError: naming the host or the port.
    """
    import ipaddress

    infos = _resolve(host, port or DEFAULT_PORTS[0])
    remote = sorted({info[4][0] for info in infos if not ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback})
    if remote and not allow_remote:
        raise MobilekitError(f"--host {host!r} can be reached from other machines ({', '.join(remote)}); Model "
                             "Explorer serves any file this process can read, so say --allow-remote to serve there")
    family, _, _, _, sockaddr = infos[0]
    error = None
    for candidate in ([port] if port else DEFAULT_PORTS):
        error = _bindable((sockaddr[0], candidate, *sockaddr[2:]), family)
        if error is None:
            port = candidate
            break
    if error is not None:
        tried = f"port {port}" if port else f"ports {DEFAULT_PORTS[0]}-{DEFAULT_PORTS[-1]}"
        raise MobilekitError(f"cannot serve on {host} {tried}: {error.strerror or error} (choose another --port)")
    warning = None
    if remote:
        warning = (f"serving on {host}:{port}, reachable from {', '.join(remote)}: anyone who can reach it can read "
                   "any file this process can read through Model Explorer's file API")
    return port, warning


def serve(model: Path, overlays: list[dict], host: str, port: int, open_browser: bool) -> None:
    """Start Model Explorer's server on ``model`` with ``overlays`` (blocks until Ctrl+C); the address is checked
    by :func:`check_server_address` first.

    Raises:
        MobilekitError: Model Explorer is not installed, or its server stopped at start (one line).
    """
    import contextlib

    try:
        import model_explorer
    except ImportError:
        raise MobilekitError("`mobilekit view` needs Model Explorer: pip install 'mobilekit[view]'") from None
    config = model_explorer.config()
    config.add_model_from_path(str(model.resolve()))
    for doc in overlays:
        config.add_node_data(doc["name"], json.dumps(doc), model_name=model.name)
    held = _HeldStdout()
    try:
        with contextlib.redirect_stdout(held):
            model_explorer.visualize_from_config(config, host=host, port=port, no_open_in_browser=not open_browser)
    except SystemExit:  # Model Explorer's own start failures print a line naming its flags, then exit
        lines = [line.strip() for line in held.text.splitlines() if line.strip()]
        reason = re.sub(r"\x1b\[[0-9;]*m", "", lines[-1]) if lines else "it exited"
        raise MobilekitError(f"Model Explorer could not start on {host}:{port}: {reason}") from None


class _HeldStdout:
    """Model Explorer's stdout held back until its server is up (then passed on: the address to open), so a start
    failure leaves only mobilekit's one line."""

    READY = "Starting Model Explorer server"

    def __init__(self):
        import sys

        self.out, self.text, self.ready = sys.stdout, "", False

    def write(self, text: str) -> int:
        if self.ready:
            return self.out.write(text)
        self.text += text
        if self.READY in self.text:
            self.ready = True
            self.out.write(self.text)
            self.out.flush()
        return len(text)

    def flush(self) -> None:
        if self.ready:
            self.out.flush()
