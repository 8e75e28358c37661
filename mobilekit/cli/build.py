"""`mobilekit build`: flags -> BuildConfig -> mobilekit.pipeline.build, and the summary table; `--size-only`."""

from __future__ import annotations

import os

from mobilekit._checks import LIMITS
from mobilekit.errors import MobilekitError
from mobilekit.cli.flags import add_arch_knobs, add_build_flags, arch_kwargs_of, number, settings_of


def add_parser(sub) -> None:
    b = sub.add_parser("build", help="train, prune, QAT, convert to int8 .tflite, evaluate, time",
                       description="Train an architecture on real images, prune it, quantize it "
                                   "(QAT), convert to a full-integer int8 .tflite at batch 1, check "
                                   "the file, measure its accuracy and latency, write a report.")
    add_build_flags(b)
    o = b.add_argument_group("size only")
    o.add_argument("--size-only", action="store_true",
                   help="no data, no training: the recipe's transmitted size for the arch with untrained weights "
                        "(one-shot pruning and k-means), e.g. --arch squeezenet1_0 --recipe deep-compression; "
                        "writes size-report.json")
    o.add_argument("--classes", type=number(int, 1, high=LIMITS["classes"], what="--classes"), default=1000,
                   help="classes for --size-only (default: %(default)s, the ImageNet configuration)")

    add_arch_knobs(b.add_argument_group("architecture knobs"))


def run(args) -> int:
    from mobilekit import archs
    from mobilekit.pipeline import BuildConfig, build
    from mobilekit.progress import console

    arch = archs.resolve(args.arch)
    if args.size_only:
        return size_only_command(args, arch)
    cfg = BuildConfig(**{**settings_of(args), "arch": arch})
    report = build(cfg, console)  # its preflight checks data, teacher, ARM root and --out before TensorFlow
    print_summary(report, cfg.out_dir)
    return 0


def size_only_command(args, arch: str) -> int:
    from pathlib import Path

    from mobilekit import archs
    from mobilekit.files import check_output_path, write_json_atomic
    from mobilekit.recipes import Recipe
    from mobilekit.sizing import size_only

    if args.weights is not None:
        raise MobilekitError("--size-only uses untrained weights; it does not take --weights")
    spec = Recipe.resolve(args.recipe, args.sparsity, args.qat, args.clusters)
    archs.check_kwargs(arch, arch_kwargs_of(args))
    out = check_output_path(os.path.join("build", arch) if args.out is None else args.out, "dir", "--out",
                            owned_marker=("size-report.json", "report.json"))  # its own earlier output, or a build's
    r = size_only(arch, spec, args.input_size or 224, args.classes, arch_kwargs_of(args), args.seed)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(out) / "size-report.json", r)
    z = r["sizes"]
    print(f"{arch} ({r['classes']} classes, {r['input_shape'][0]}px), recipe {spec.name}, untrained weights:")
    print(f"  int8 .tflite {z['int8_tflite_bytes']:,} B, gzip {z['int8_gzip_bytes']:,} B "
          f"({z['bits_per_param']:.2f} bits/param), xz {z['int8_xz_bytes']:,} B ({z['bits_per_param_xz']:.2f})")
    print(f"  {r['weight_params']:,} weight params, {r['sparsity']:.1%} zeros, at most {r['max_distinct_per_tensor']} "
          f"distinct int8 values per tensor, {r['max_distinct_per_channel']} per output channel")
    print(f"  -> {Path(out) / 'size-report.json'}")
    return 0


def print_summary(report: dict, out_dir) -> None:
    from rich.console import Console
    from rich.table import Table

    from mobilekit.report import summary_rows

    table = Table(title=f"mobilekit build -> {out_dir}/", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary_rows(report):
        table.add_row(key, value)
    Console().print(table)
    for line in report.get("warnings") or []:
        Console(stderr=True).print(f"[bold red]warning:[/bold red] {line}", highlight=False)
