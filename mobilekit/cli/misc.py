"""`mobilekit export android|tflite`, `env` and `archs`."""

from __future__ import annotations

import os
import sys

from mobilekit._checks import LIMITS
from mobilekit.app_io import IO_TYPES
from mobilekit.cli.flags import Parser, add_arch_knobs, arch_kwargs_of, number, rewrite_list


def add_parser(sub) -> None:
    ex = sub.add_parser("export", help="`export android BUILD_DIR` for an app; `export tflite --arch NAME` "
                                       "untrained float and int8 files",
                        description="Export a build's artifacts for an application, or an untrained arch's "
                                    ".tflite files.")
    exs = ex.add_subparsers(dest="export_command", parser_class=Parser, required=True)
    ea = exs.add_parser("android", help="the .tflite, labels.txt and model.json for the Android demo app",
                        description="Copy a build's .tflite and labels.txt and write model.json (input and output "
                                    "tensors, the exact preprocessing, labels, sha256) for android_demo/ or your app.")
    ea.add_argument("build_dir", metavar="BUILD_DIR", help="a folder written by `mobilekit build`")
    ea.add_argument("--to", default=None, metavar="DIR",
                    help="destination (default: android_demo/app/src/main/assets of this checkout)")
    et = exs.add_parser("tflite", help="float and int8 .tflite of an untrained arch, for size and latency checks",
                        description="Write <arch>_float.tflite and <arch>_int8.tflite (full int8, ranges from "
                                    "random images) of an untrained arch, through the same graph rewrites and "
                                    "conversion as a build, and export.json (ops, sizes, sha256, rewrites).")
    et.add_argument("--arch", required=True, help="registered architecture (see `mobilekit archs`)")
    et.add_argument("--input-size", type=number(int, 1, high=LIMITS["input_size"], what="--input-size"),
                    default=224, help="input height and width (default: %(default)s)")
    et.add_argument("--classes", type=number(int, 1, high=LIMITS["classes"], what="--classes"), default=1000,
                    help="output classes (default: %(default)s)")
    et.add_argument("--out", required=True, metavar="DIR", help="folder for the files (created if missing)")
    et.add_argument("--rewrites", type=rewrite_list, default=None, metavar="NAMES",
                    help="graph rewrites, comma-separated, or none (default: the measured defaults)")
    et.add_argument("--io", choices=IO_TYPES, default=IO_TYPES[0],
                    help="the int8 file's input and output type, as `build --io` (default: %(default)s)")
    et.add_argument("-v", "--verbose", action="store_true",
                    help="show the libraries' own logs and warnings (TensorFlow, absl, LiteRT)")
    add_arch_knobs(et.add_argument_group("architecture knobs"))

    sub.add_parser("env", help="print versions and data locations for bug reports")
    a = sub.add_parser("archs", help="list the registered architectures")
    a.add_argument("pattern", nargs="?", default=None, help="glob filter, e.g. 'squeezenet*'")


def run_export(args) -> int:
    if args.export_command == "tflite":
        return run_export_tflite(args)
    from mobilekit.export_android import export_android

    doc = export_android(args.build_dir, args.to)
    to = args.to or "android_demo/app/src/main/assets"
    print(f"{doc['model']}, {doc['labels']} and model.json -> {to}/ (input {doc['input']['shape']} "
          f"{doc['input']['dtype']}, {doc['num_classes']} classes, sha256 {doc['sha256'][:12]})")
    return 0


def run_export_tflite(args) -> int:
    from mobilekit import archs
    from mobilekit.files import check_output_path

    arch = archs.resolve(args.arch)
    kwargs = arch_kwargs_of(args)
    archs.check_kwargs(arch, kwargs)  # before TensorFlow loads
    check_output_path(args.out, kind="dir", what="--out", owned_marker="export.json")
    from mobilekit.convert import export_untrained
    from mobilekit.rewrites import DEFAULT_REWRITES

    rewrites = DEFAULT_REWRITES if args.rewrites is None else args.rewrites
    doc = export_untrained(arch, args.out, args.input_size, args.classes, kwargs, rewrites, io=args.io)
    for kind, f in doc["files"].items():
        ops = ", ".join(f"{n} {c}" for n, c in f["ops"].items())
        print(f"{args.out}/{f['file']}: {f['bytes']:,} bytes ({ops})")
    applied = [f"{e['rewrite']} ({e['layer']})" for e in doc["rewrites"]["log"] if e["applied"]]
    print(f"rewrites: {', '.join(applied) or 'none applied'} (requested: {', '.join(rewrites) or 'none'})")
    return 0


def run_env(args) -> int:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from mobilekit.data import find_fashion_mnist

    print(f"{'python':<30} {platform.python_version()} ({sys.executable})")
    print(f"{'platform':<30} {platform.platform()} ({platform.machine()}, {os.cpu_count()} CPUs)")
    from mobilekit.hostinfo import cpu_info

    cpu = cpu_info()
    print(f"{'cpu':<30} {cpu['model']}: {cpu['summary']} ({' '.join(cpu['features']) or 'no features listed'})")
    for pkg in ("mobilekit", "tensorflow", "tf-keras", "tensorflow-model-optimization",
                "ai-edge-litert", "numpy", "rich"):
        try:
            v = version(pkg)
        except PackageNotFoundError:
            v = "not installed"
        print(f"{pkg:<30} {v}")
    print(f"{'fashion-mnist':<30} {find_fashion_mnist() or 'not found'}")
    return 0


def run_archs(args) -> int:
    from mobilekit import archs

    for name in archs.list_archs(args.pattern, task=None):
        task = archs.task_of(name)
        print(name if task == "classification" else f"{name} ({task})")
    return 0
