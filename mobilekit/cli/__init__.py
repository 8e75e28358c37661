"""The `mobilekit` command: one module per command (build, explore, info, bench, emulate, misc), each with
``add_parser`` and ``run``; shared flags in ``flags``.

TensorFlow is imported only by the commands that need it, so ``--help`` and argument errors answer at
once. Bad input gets one line on stderr naming the bad value and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from mobilekit.cli import bench, build, emulate, explore, info, misc, numerics, view
from mobilekit.cli.flags import EXIT_USAGE, Parser
from mobilekit.errors import MobilekitError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mobilekit", description="Architecture name + images -> small, fast, "
                     "verified int8 .tflite for Android, with measured size, accuracy and latency.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    build.add_parser(sub)
    explore.add_parser(sub)
    info.add_parser(sub)
    bench.add_parser(sub)
    numerics.add_parser(sub)
    view.add_parser(sub)
    emulate.add_parser(sub)
    misc.add_parser(sub)
    for command in sub.choices.values():
        command.add_argument("-v", "--verbose", action="store_true",
                             help="show the libraries' own logs and warnings (TensorFlow, absl, LiteRT)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    # The flags written on the command line (explore: they win over a --spec file's values).
    given = {t[2:].split("=")[0].replace("-", "_") for t in argv if t.startswith("--")}
    args.given_flags = given | {g[3:] for g in given if g.startswith("no_")}  # --no-qat gives qat
    from mobilekit.backend import set_verbose

    set_verbose(bool(getattr(args, "verbose", False)))
    if args.version:
        from importlib.metadata import version
        print(f"mobilekit {version('mobilekit')}")
        return 0
    commands = {"build": build.run, "info": info.run, "bench": bench.run, "emulate": emulate.run,
                "env": misc.run_env, "explore": explore.run, "export": misc.run_export, "archs": misc.run_archs,
                "numerics": numerics.run, "view": view.run}
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return commands[args.command](args)
    except MobilekitError as e:
        print(f"mobilekit {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `mobilekit env | head -1`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"mobilekit {args.command}: interrupted; no partial artifact was written", file=sys.stderr)
        return 130
