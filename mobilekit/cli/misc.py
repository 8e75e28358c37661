"""`mobilekit export android`, `env` and `archs`."""

from __future__ import annotations

import os
import sys

from mobilekit.cli.flags import Parser


def add_parser(sub) -> None:
    ex = sub.add_parser("export", help="export a build for an app: `export android BUILD_DIR`",
                        description="Export a build's artifacts for an application.")
    exs = ex.add_subparsers(dest="export_command", parser_class=Parser, required=True)
    ea = exs.add_parser("android", help="the .tflite, labels.txt and model.json for the Android demo app",
                        description="Copy a build's .tflite and labels.txt and write model.json (input and output "
                                    "tensors, the exact preprocessing, labels, sha256) for android_demo/ or your app.")
    ea.add_argument("build_dir", metavar="BUILD_DIR", help="a folder written by `mobilekit build`")
    ea.add_argument("--to", default=None, metavar="DIR",
                    help="destination (default: android_demo/app/src/main/assets of this checkout)")

    sub.add_parser("env", help="print versions and data locations for bug reports")
    a = sub.add_parser("archs", help="list the registered architectures")
    a.add_argument("pattern", nargs="?", default=None, help="glob filter, e.g. 'squeezenet*'")


def run_export(args) -> int:
    from mobilekit.export_android import export_android

    doc = export_android(args.build_dir, args.to)
    to = args.to or "android_demo/app/src/main/assets"
    print(f"{doc['model']}, {doc['labels']} and model.json -> {to}/ (input {doc['input']['shape']} "
          f"{doc['input']['dtype']}, {doc['num_classes']} classes, sha256 {doc['sha256'][:12]})")
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

    for name in archs.list_archs(args.pattern):
        print(name)
    return 0
