"""`mobilekit view BUILD_DIR|FILE.tflite`: the graph in Google's Model Explorer with the kit's numbers on it."""

from __future__ import annotations

import argparse

from mobilekit.cli.flags import number


def add_parser(sub) -> None:
    v = sub.add_parser("view", help="show a build's .tflite in Model Explorer with SQNR, sparsity, precision, time",
                       description="Start Google's Model Explorer (a local web server; pip install "
                                   "'mobilekit[view]') on a build's .tflite with its numbers on the nodes: int8 "
                                   "SQNR against the float reference, weight sparsity, the precision each op "
                                   "computes in, and per-op time from `mobilekit bench --profile --json`. A .tflite "
                                   "file alone takes its node data from --node-data (e.g. `mobilekit numerics ... "
                                   "--model-explorer OUT.json`). Ctrl+C stops the server.")
    v.add_argument("target", metavar="BUILD_DIR|FILE.tflite", help="a build folder, or a .tflite file")
    v.add_argument("--node-data", action="append", default=[], metavar="FILE.json",
                   help="Model Explorer node data to show as well (repeatable)")
    v.add_argument("--profile", default=None, metavar="BENCH.json",
                   help="`mobilekit bench MODEL --profile --json BENCH.json` of the same file: per-op time")
    v.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    v.add_argument("--port", type=number(int, 1, high=65535, what="--port"), default=8080,
                   help="port to serve on (default: %(default)s)")
    v.add_argument("--no-browser", dest="browser", action="store_false",
                   help="do not open a browser tab (print the address only)")


def _read_json(path: str, flag: str) -> dict:
    import json
    from pathlib import Path

    from mobilekit.errors import MobilekitError

    p = Path(path)
    if not p.is_file():
        raise MobilekitError(f"{flag}: no such file {path!r}")
    try:
        doc = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise MobilekitError(f"{flag} {path!r} is not JSON ({type(e).__name__})") from None
    if not isinstance(doc, dict):
        raise MobilekitError(f"{flag} {path!r} is not a JSON object")
    return doc


def run(args: argparse.Namespace) -> int:
    from mobilekit.errors import MobilekitError
    from mobilekit.model_explorer import build_overlays, resolve_target, serve

    model, content, report = resolve_target(args.target)
    extra = []
    for path in args.node_data:
        doc = _read_json(path, "--node-data")
        if not isinstance(doc.get("results"), dict):
            raise MobilekitError(f"--node-data {path!r} is not Model Explorer node data (no \"results\" object)")
        extra.append({"name": str(doc.get("name") or path), **doc})
    profile = _read_json(args.profile, "--profile") if args.profile else None
    overlays = build_overlays(report, content, profile)
    names = ", ".join(d["name"] for d in overlays + extra) or "none"
    print(f"Model Explorer on {model} with node data: {names}", flush=True)
    serve(model, overlays + extra, args.host, args.port, args.browser)
    return 0
