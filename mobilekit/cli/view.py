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
    v.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default: %(default)s, this machine only; another address needs "
                        "--allow-remote)")
    v.add_argument("--allow-remote", action="store_true",
                   help="serve on a --host other machines can reach: Model Explorer then shows them any file "
                        "this process can read, not only the model")
    v.add_argument("--port", type=number(int, 1, high=65535, what="--port"), default=None,
                   help="port to serve on (default: the first free one of 8080-8099)")
    v.add_argument("--no-browser", dest="browser", action="store_false",
                   help="do not open a browser tab (print the address only)")


def run(args: argparse.Namespace) -> int:
    from mobilekit.json_files import read_json
    from mobilekit.model_explorer import (NODE_DATA_SHAPE, PROFILE_SHAPE, build_overlays, check_server_address,
                                          resolve_target, serve)

    port, warning = check_server_address(args.host, args.port, args.allow_remote)  # before anything is read
    model, content, report = resolve_target(args.target)
    extra = []
    for path in args.node_data:
        doc = read_json(path, "--node-data", NODE_DATA_SHAPE)
        extra.append({"name": str(doc.get("name") or path), **doc})
    profile = read_json(args.profile, "--profile", PROFILE_SHAPE) if args.profile else None
    overlays = build_overlays(report, content, profile)
    names = ", ".join(d["name"] for d in overlays + extra) or "none"
    if warning:
        import sys

        print(f"mobilekit view: warning: {warning}", file=sys.stderr, flush=True)
    print(f"Model Explorer on {model} with node data: {names}", flush=True)
    serve(model, overlays + extra, args.host, port, args.browser)
    return 0
