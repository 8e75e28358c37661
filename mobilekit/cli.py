"""The `mobilekit` command.

TensorFlow is imported only by the subcommands that need it, so ``--help`` and
argument errors answer at once. Bad input gets one line on stderr naming the
bad value and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from mobilekit.errors import MobilekitError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _number(kind, low=None, low_open=False, high=None, high_open=False, what="value"):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what}: {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"invalid {what}: {text!r}")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"{what} must be {'>' if low_open else '>='} {low}; received {text!r}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"{what} must be {'<' if high_open else '<='} {high}; received {text!r}")
        return value
    return parse


def _thread_list(text):
    parts = text.split(",")
    if not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"--num_threads must be positive ints such as 1 or 1,2; received {text!r}")
    return list(dict.fromkeys(int(p) for p in parts))


def _cpu_list(text):
    from mobilekit.emulate.root import check_cpu

    try:
        return list(dict.fromkeys(check_cpu(c.strip()) for c in text.split(",")))
    except MobilekitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _device_list(text):
    from mobilekit.bench.devices import device

    try:
        return list(dict.fromkeys(device(d.strip()).name for d in text.split(",")))
    except MobilekitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_device_flag(parser, what: str) -> None:
    parser.add_argument("--device", type=_device_list, default=[], metavar="NAME[,NAME...]",
                        help=f"predict {what} batch-1 latency on these phones from instruction counts on an "
                             "emulated ARM core (needs `mobilekit emulate setup`); see `mobilekit emulate devices`")


def _add_positive(group, flag: str, help: str) -> None:
    """An optional positive number (a target or budget), None when not given."""
    group.add_argument(flag, type=_number(float, 0, low_open=True, what=flag), default=None, help=help)


def _bool(text):
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; received {text!r}")


# Flags for the builders' design metaparameters (mobilekit.archs.knob_types), shared by `build`, `info`
# and `explore`: only the ones given reach the builder, which rejects those it does not take. BN and the
# classifier's ReLU are the build's training choices (--no-batch-norm), not flags of their own.
TRAINING_KNOBS = ("batch_norm", "classifier_relu")


def _arch_knob_flags() -> dict[str, type]:
    from mobilekit import archs

    return {k: v for k, v in archs.knob_types().items() if k not in TRAINING_KNOBS}


def _knob_value(kind, flag: str):
    if kind is bool:
        return _bool
    if kind is str:
        return lambda text: None if text.lower() == "none" else text
    return _number(kind, what=flag)


def _add_arch_knobs(group) -> None:
    knobs = _arch_knob_flags()
    for name, kind in knobs.items():
        flag = f"--{name.replace('_', '-')}"
        group.add_argument(flag, type=_knob_value(kind, flag), default=None, metavar=kind.__name__.upper())
    group.description = ("the builders' metaparameters, passed when given; an arch refuses one it does not "
                         "take, naming those it does: " + ", ".join(f"--{k.replace('_', '-')}" for k in knobs))


def _knobs(args) -> dict:
    return {k: getattr(args, k) for k in _arch_knob_flags() if getattr(args, k, None) is not None}


def _recipe(text: str) -> str:
    from mobilekit.recipes import Recipe

    try:
        Recipe.preset(text)
    except MobilekitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _add_build_flags(b, d: dict) -> None:
    """The flags of one build (model, data, training, compression), shared by `build` and `explore`."""
    from mobilekit.recipes import PRESETS

    g = b.add_argument_group("model and data")
    g.add_argument("--arch", default="squeezenet", help="registered architecture (default: squeezenet "
                   "= squeezenet1_1); see `mobilekit archs`")
    g.add_argument("--data", default=None, metavar="DIR",
                   help="image folder with one sub-folder per class (default: Fashion-MNIST)")
    g.add_argument("--weights", choices=("imagenet",), default=None,
                   help="start from pretrained weights instead of training: `--arch mobilenet_v2 "
                        "--weights imagenet` ports torchvision's ImageNet model, calibrates on "
                        "scikit-image's photos and converts (no training options apply)")
    g.add_argument("--input-size", type=_number(int, 1, what="input size"), default=None,
                   help="model input height and width (default: 48, or 224 with --weights)")
    g.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                   help="no BatchNormalization after convs (BN folds into the convs at conversion)")
    g.add_argument("--limit-train", type=_number(int, 1, what="--limit-train"), default=None, metavar="N",
                   help="use only the first N Fashion-MNIST training images (quick runs)")
    g.add_argument("--limit-test", type=_number(int, 1, what="--limit-test"), default=None, metavar="N",
                   help="use only the first N Fashion-MNIST test images (quick runs)")
    t = b.add_argument_group("training and compression")
    t.add_argument("--epochs", type=_number(float, 0, what="epochs"), default=d["epochs"],
                   help="float training epochs, fractions allowed (default: %(default)s)")
    t.add_argument("--prune-epochs", type=_number(float, 0, what="prune epochs"), default=None,
                   help="pruning fine-tune epochs (default: the recipe's, else 0.5)")
    t.add_argument("--qat-epochs", type=_number(float, 0, what="QAT epochs"), default=None,
                   help="quantization-aware training epochs (default: the recipe's, else 0.25)")
    t.add_argument("--recipe", type=_recipe, default=d["recipe"], metavar="NAME|FILE.json",
                   help="compression recipe, a preset or a recipe .json file (the format of "
                        "mobilekit/recipes/presets/*.json): "
                        + "; ".join(f"{r.name}: {r.summary}" for r in PRESETS.values()).replace("%", "%%")
                        + " (default: %(default)s)")
    t.add_argument("--sparsity", type=_number(float, 0, high=1, high_open=True, what="sparsity"),
                   default=None, help="override the recipe's magnitude-pruning target in [0, 1); 0 skips pruning")
    t.add_argument("--clusters", type=_number(int, 2, high=256, what="clusters"), default=None,
                   help="override the recipe's weight clusters per kernel (tfmot clustering)")
    t.add_argument("--cluster-epochs", type=_number(float, 0, what="cluster epochs"), default=None,
                   help="clustering fine-tune epochs (default: the recipe's, else 0.5)")
    t.add_argument("--qat", dest="qat", action=argparse.BooleanOptionalAction, default=None,
                   help="override the recipe: quantization-aware training, or post-training quantization")
    t.add_argument("--teacher", default=None, metavar="PATH_or_ARCH",
                   help="distill the float training from a teacher: a Keras model file, or a registered arch "
                        "trained first on the same data and epochs; the report also gives the student's "
                        "accuracy without the teacher (same data, epochs and initial weights)")
    t.add_argument("--distill-alpha", type=_number(float, 0, high=1, what="--distill-alpha"),
                   default=d["distill_alpha"], help="weight of the hard labels; 1 - alpha on the teacher's "
                   "softened outputs (default: %(default)s)")
    t.add_argument("--temperature", type=_number(float, 0, low_open=True, what="--temperature"),
                   default=d["temperature"], help="softmax temperature of the soft targets (default: %(default)s)")
    t.add_argument("--batch-size", type=_number(int, 1, what="batch size"), default=d["batch_size"])
    t.add_argument("--lr", type=_number(float, 0, low_open=True, what="learning rate"), default=d["lr"],
                   help="peak learning rate of the float stage (cosine decay; default: %(default)s)")
    t.add_argument("--optimizer", choices=("adam", "sgd"), default=d["optimizer"])
    t.add_argument("--augment", action="store_true",
                   help="random horizontal flips while training (off: no overfitting at the default budget)")
    t.add_argument("--seed", type=_number(int, 0, what="seed"), default=d["seed"])


def _add_explore_parser(sub, d: dict) -> None:
    x = sub.add_parser("explore", help="design-space exploration on Ray Tune: sweep knobs, targets, Pareto front",
                       description="Build many design points with `mobilekit build`'s own pipeline on Ray Tune "
                                   "(a local Ray by default, a cluster with --address), screen them against hard "
                                   "targets before training, and write results.csv/json, plots and explore.md: "
                                   "the Pareto front, saturation points and the recommended design. The build "
                                   "flags set the base point; --arch takes a comma list to span families. "
                                   "Resumable: the same command again runs only unfinished points.")
    _add_build_flags(x, d)
    _add_arch_knobs(x.add_argument_group("architecture knobs (the base point)"))
    s = x.add_argument_group("the space and the search")
    s.add_argument("--space", action="append", default=[], metavar="KNOB=V1,V2,...",
                   help="values of one knob (repeatable): an arch metaparameter (squeeze_ratio, pct3x3, base_e, "
                        "incr_e, freq, bypass, alpha, depth_multiplier, groups, scale, ...), input_size, a recipe "
                        "field (sparsity, clusters, qat, recipe) or a budget (epochs, prune_epochs, qat_epochs, lr)")
    s.add_argument("--spec", default=None, metavar="FILE.yaml|json",
                   help="a sweep spec file (schema in docs/explore.md); flags given on the command line win")
    s.add_argument("--search", choices=("grid", "oneatatime", "optuna"), default=None,
                   help="grid: full factorial (default); oneatatime: each knob swept around the base point "
                        "(saturation curves); optuna: multi-objective NSGA-II on Ray Tune's OptunaSearch")
    s.add_argument("--trials", type=_number(int, 1, high=100000, what="--trials"), default=None,
                   help="designs Optuna samples (--search optuna)")
    s.add_argument("--seeds", type=_number(int, 1, high=1000, what="--seeds"), default=None,
                   help="train each design with this many seeds (noise, saturation error bars; default: 1)")
    s.add_argument("--objectives", default=None, metavar="COL:max|min,...",
                   help="Pareto objectives (default: accuracy_int8:max,size_gzip_bytes:min)")
    tg = x.add_argument_group("targets (hard: violated before training -> screened out, never trained)")
    tg.add_argument("--min-accuracy", type=_number(float, 0, low_open=True, high=1, what="--min-accuracy"),
                    default=None, help="int8 accuracy on the held-out set, a fraction (e.g. 0.85)")
    _add_positive(tg, "--max-size-kb", "gzip'd int8 .tflite in KiB (1,024 bytes)")
    _add_positive(tg, "--sram-kb", "int8 weights + peak activations must fit this SRAM in KiB (e.g. 8192)")
    _add_positive(tg, "--fps", "frames per second on --device (predicted from emulated ARM counts)")
    _add_positive(tg, "--energy-mj", "energy per frame in millijoules (45 nm model, docs/energy-model.md)")
    tg.add_argument("--device", type=_device_list, default=None, metavar="NAME",
                    help="phone for latency and --fps (see `mobilekit emulate devices`; needs `mobilekit emulate "
                         "setup`)")
    r = x.add_argument_group("engine and output")
    r.add_argument("--out", default=None, metavar="DIR", help="sweep folder (default: build/explore)")
    r.add_argument("--address", default=None, metavar="HOST:PORT|auto",
                   help="run on an existing Ray cluster (`ray start --head`); default: a local Ray for this sweep")
    r.add_argument("--cpus-per-trial", type=_number(float, 0, low_open=True, high=1024, what="--cpus-per-trial"),
                   default=None, help="Ray CPUs per design point (default: 1; concurrency = CPUs / this)")
    r.add_argument("--max-concurrent", type=_number(int, 1, high=1000, what="--max-concurrent"), default=None,
                   help="at most this many points at once (default: what the CPUs allow)")
    r.add_argument("--latency-runs", type=_number(int, 1, high=100000, what="latency runs"),
                   default=d["latency_runs"], help="timed batch-1 runs per point (default: %(default)s)")
    r.add_argument("--retry-failed", action="store_true", help="run failed points again on resume")
    r.add_argument("--report", default=None, metavar="DIR",
                   help="only re-render plots and explore.md from DIR/results.json (no training)")


def _add_build_parser(sub, d: dict) -> None:
    b = sub.add_parser("build", help="train, prune, QAT, convert to int8 .tflite, evaluate, time",
                       description="Train an architecture on real images, prune it, quantize it "
                                   "(QAT), convert to a full-integer int8 .tflite at batch 1, check "
                                   "the file, measure its accuracy and latency, write a report.")
    _add_build_flags(b, d)
    o = b.add_argument_group("output")
    o.add_argument("--out", default=None, metavar="DIR", help="output folder (default: build/<arch>/)")
    o.add_argument("--latency-runs", type=_number(int, 1, what="latency runs"),
                   default=d["latency_runs"], help="timed batch-1 runs after warm-up (default: %(default)s)")
    _add_device_flag(o, "the built file's")
    o.add_argument("--size-only", action="store_true",
                   help="no data, no training: the recipe's transmitted size for the arch with untrained weights "
                        "(one-shot pruning and k-means), e.g. --arch squeezenet1_0 --recipe deep-compression; "
                        "writes size-report.json")
    o.add_argument("--classes", type=_number(int, 1, what="classes"), default=1000,
                   help="classes for --size-only (default: %(default)s, the ImageNet configuration)")

    _add_arch_knobs(b.add_argument_group("architecture knobs"))


def _add_info_parser(sub) -> None:
    i = sub.add_parser("info", help="params, MACs, weight bytes, peak activations, per-layer table",
                       description="Complexity of an architecture without training: parameters, "
                                   "MACs, weight bytes after BN folding (float32 and int8), peak live "
                                   "activation memory at batch 1, and a per-layer table.")
    i.add_argument("--arch", default="squeezenet", help="registered architecture")
    i.add_argument("--input-size", type=_number(int, 1, what="input size"), default=224)
    i.add_argument("--classes", type=_number(int, 1, what="classes"), default=1000)
    i.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_device_flag(i, "the untrained float and int8 files'")
    _add_arch_knobs(i.add_argument_group("architecture knobs"))


def _add_bench_parser(sub) -> None:
    bn = sub.add_parser("bench", help="time .tflite files at batch 1 in LiteRT (benchmark_model-style)",
                        description="Time one or more .tflite files at batch 1 in LiteRT, interleaved run by "
                                    "run, with benchmark_model's statistics, memory, ops, XNNPACK partitions "
                                    "and a flatbuffer analysis (MACs, weights, peak activations). Files are "
                                    "validated first and run in a child process, so a corrupt file is an "
                                    "error, never a crash.")
    bn.add_argument("models", nargs="*", metavar="MODEL.tflite",
                    help=".tflite files (and .onnx files, run in onnxruntime, with the peers extra)")
    bn.add_argument("--num_runs", type=_number(int, 1, what="--num_runs"), default=50,
                    help="timed runs per model at least (default: %(default)s)")
    bn.add_argument("--warmup_runs", type=_number(int, 0, what="--warmup_runs"), default=1,
                    help="runs before timing, reported as the warm-up mean (default: %(default)s)")
    bn.add_argument("--min_secs", type=_number(float, 0, what="--min_secs"), default=1.0,
                    help="keep timing until this many seconds have passed (default: %(default)s)")
    bn.add_argument("--num_threads", type=_thread_list, default=[1], metavar="N[,N...]",
                    help="interpreter threads, one value or a list such as 1,2 (default: 1)")
    bn.add_argument("--use_xnnpack", type=_bool, default=True, metavar="true|false",
                    help="apply the XNNPACK delegate, as LiteRT does by default (default: true)")
    bn.add_argument("--input", default=None, metavar="FILE.npy",
                    help="input array (exact shape and dtype of the model input) instead of random values")
    bn.add_argument("--seed", type=_number(int, 0, what="--seed"), default=0, help=argparse.SUPPRESS)
    pe = bn.add_argument_group("peers (pip install 'mobilekit[peers]')")
    pe.add_argument("--compare", choices=("onnxruntime",), default=None,
                    help="also convert --arch to ONNX (tf2onnx) and time onnxruntime float and QDQ int8 "
                         "next to LiteRT float and int8, interleaved")
    pe.add_argument("--arch", default=None, help="registered architecture for --compare")
    pe.add_argument("--input-size", type=_number(int, 32, what="--input-size"), default=224)
    pe.add_argument("--classes", type=_number(int, 1, what="--classes"), default=1000)
    bn.add_argument("--profile", action="store_true",
                    help="per-op time by op-prefix sub-models (see docs/bench.md), at the first thread count")
    tg = bn.add_argument_group("targets (the seed's design goals; docs/energy-model.md)")
    _add_positive(tg, "--sram-kb", "on-chip SRAM budget: do weights + peak activations fit? (e.g. 8192)")
    _add_positive(tg, "--fps", "frame-rate target checked against the measured median (e.g. 15)")
    _add_positive(tg, "--energy-mj", "energy budget per frame, against a 45 nm per-operation estimate (e.g. 2000)")
    arm = bn.add_argument_group("ARM (real aarch64 LiteRT kernels under qemu; `mobilekit emulate setup` first)")
    arm.add_argument("--emulate", type=_cpu_list, default=[], metavar="CPU[,CPU...]",
                     help="count instructions per invoke on these qemu CPU models (e.g. cortex-a76,cortex-a53) "
                          "and check the outputs against the host run")
    arm.add_argument("--emulate-threads", type=_thread_list, default=[1, 4], metavar="N[,N...]",
                     help="thread counts for --emulate (default: 1,4; counts are totals over threads)")
    arm.add_argument("--emulate-repeats", type=_number(int, 1, what="--emulate-repeats"), default=2,
                     help="counted invokes per thread count after the first (default: %(default)s)")
    _add_device_flag(arm, "each model's")
    arm.add_argument("--from-benchmark-model", nargs="+", default=[], metavar="LOG",
                     help="add results from TFLite benchmark_model logs (from a phone; see "
                          "android_demo/benchmark/) to the same table and JSON")
    bn.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
    bn.add_argument("--csv", default=None, metavar="PATH", help="write one row per model and thread count")


def _add_emulate_parser(sub) -> None:
    em = sub.add_parser("emulate", help="the aarch64 root for ARM emulation: setup, status, devices",
                        description="Manage the cached aarch64 root (Debian arm64 Python + the aarch64 "
                                    "ai-edge-litert wheel + an instruction-counting qemu plugin) that "
                                    "`bench --emulate/--device` runs models in.")
    ems = em.add_subparsers(dest="emulate_command", parser_class=_Parser, required=True)
    es = ems.add_parser("setup", help="build the root (needs root for apt-get and mmdebstrap; ~1 min)")
    es.add_argument("--force", action="store_true", help="rebuild even if the root is up to date")
    es.add_argument("--mirror", default=None, help="Debian mirror URL (default: mmdebstrap's)")
    st = ems.add_parser("status", help="what is there, and whether it matches this install")
    st.add_argument("--json", action="store_true")
    ems.add_parser("devices", help="the device profiles and the cost model's calibration")


def _build_parser() -> argparse.ArgumentParser:
    from dataclasses import fields

    from mobilekit.pipeline import BuildConfig

    d = {f.name: f.default for f in fields(BuildConfig)}
    parser = _Parser(prog="mobilekit", description="Architecture name + images -> small, fast, "
                     "verified int8 .tflite for Android, with measured size, accuracy and latency.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    _add_build_parser(sub, d)
    _add_explore_parser(sub, d)
    _add_info_parser(sub)
    _add_bench_parser(sub)
    _add_emulate_parser(sub)
    ex = sub.add_parser("export", help="export a build for an app: `export android BUILD_DIR`",
                        description="Export a build's artifacts for an application.")
    exs = ex.add_subparsers(dest="export_command", parser_class=_Parser, required=True)
    ea = exs.add_parser("android", help="the .tflite, labels.txt and model.json for the Android demo app",
                        description="Copy a build's .tflite and labels.txt and write model.json (input and output "
                                    "tensors, the exact preprocessing, labels, sha256) for android_demo/ or your app.")
    ea.add_argument("build_dir", metavar="BUILD_DIR", help="a folder written by `mobilekit build`")
    ea.add_argument("--to", default=None, metavar="DIR",
                    help="destination (default: android_demo/app/src/main/assets of this checkout)")

    sub.add_parser("env", help="print versions and data locations for bug reports")
    a = sub.add_parser("archs", help="list the registered architectures")
    a.add_argument("pattern", nargs="?", default=None, help="glob filter, e.g. 'squeezenet*'")
    return parser


def _cmd_build(args) -> int:
    from mobilekit import archs
    from mobilekit.pipeline import BuildConfig, build
    from mobilekit.progress import console

    arch = archs.resolve(args.arch)
    if args.size_only:
        return _size_only(args, arch)
    cfg = BuildConfig(arch=arch, weights=args.weights, input_size=args.input_size, seed=args.seed, out=args.out,
                      latency_runs=args.latency_runs, devices=tuple(args.device), **_training_options(args))
    report = build(cfg, console)  # its preflight checks data, teacher, ARM root and --out before TensorFlow
    _print_summary(report, cfg.out_dir)
    return 0


def _size_only(args, arch: str) -> int:
    from pathlib import Path

    from mobilekit import archs
    from mobilekit._io import ensure_writable_dir, write_json_atomic
    from mobilekit.recipes import Recipe
    from mobilekit.sizing import size_only

    if args.weights is not None:
        raise MobilekitError("--size-only uses untrained weights; it does not take --weights")
    spec = Recipe.resolve(args.recipe, args.sparsity, args.qat, args.clusters)
    archs.check_kwargs(arch, _knobs(args))
    out = ensure_writable_dir(args.out or os.path.join("build", arch))
    r = size_only(arch, spec, args.input_size or 224, args.classes, _knobs(args), args.seed)
    write_json_atomic(Path(out) / "size-report.json", r)
    z = r["sizes"]
    print(f"{arch} ({r['classes']} classes, {r['input_shape'][0]}px), recipe {spec.name}, untrained weights:")
    print(f"  int8 .tflite {z['int8_tflite_bytes']:,} B, gzip {z['int8_gzip_bytes']:,} B "
          f"({z['bits_per_param']:.2f} bits/param), xz {z['int8_xz_bytes']:,} B ({z['bits_per_param_xz']:.2f})")
    print(f"  {r['weight_params']:,} weight params, {r['sparsity']:.1%} zeros, at most {r['max_distinct_per_tensor']} "
          f"distinct int8 values per tensor, {r['max_distinct_per_channel']} per output channel")
    print(f"  -> {Path(out) / 'size-report.json'}")
    return 0


def _training_options(args) -> dict:
    """BuildConfig's training fields from the flags (pretrained builds reject non-defaults)."""
    return dict(data=args.data, epochs=args.epochs, prune_epochs=args.prune_epochs,
                qat_epochs=args.qat_epochs, sparsity=args.sparsity, qat=args.qat, recipe=args.recipe,
                clusters=args.clusters, cluster_epochs=args.cluster_epochs, teacher=args.teacher,
                distill_alpha=args.distill_alpha, temperature=args.temperature,
                batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, augment=args.augment,
                arch_kwargs={**_knobs(args), **({} if args.batch_norm else {"batch_norm": False})} or None,
                limit_train=args.limit_train, limit_test=args.limit_test)


def _print_summary(report: dict, out_dir) -> None:
    from rich.console import Console
    from rich.table import Table

    from mobilekit.report import summary_rows

    table = Table(title=f"mobilekit build -> {out_dir}/", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary_rows(report):
        table.add_row(key, value)
    Console().print(table)


def _cmd_info(args) -> int:
    import json

    from mobilekit import archs

    arch = archs.resolve(args.arch)
    knobs = _knobs(args)
    archs.check_kwargs(arch, knobs)  # before TensorFlow loads
    if args.device:
        from mobilekit.emulate.root import require_ready
        require_ready()

    from mobilekit.analysis import complexity, peak_activation_elements, weight_bytes

    model = archs.create(arch, input_shape=(args.input_size, args.input_size, 3),
                        classes=args.classes, **knobs)
    info = complexity(model)
    peak = peak_activation_elements(model)
    result = {"arch": arch, "metaparameters": knobs, "input_shape": [args.input_size, args.input_size, 3],
              "classes": args.classes, "params": info["params"],
              "trainable_params": info["trainable_params"], "macs": info["macs"],
              "weight_bytes": weight_bytes(model),
              "peak_activation_bytes": {"int8": peak, "float32": 4 * peak},
              "layers": info["layers"]}
    if args.device:
        result["arm"] = _untrained_arm(model, args.device)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title=f"{model.name}", show_header=False)
    for key, value in (("params (trainable)", f"{result['params']:,} ({result['trainable_params']:,})"),
                       ("MACs", f"{result['macs']:,}"),
                       ("weights float32 / int8", f"{result['weight_bytes']['float32']:,} / "
                                                  f"{result['weight_bytes']['int8']:,} bytes"),
                       ("peak activations int8 / float32", f"{peak:,} / {4 * peak:,} bytes")):
        summary.add_row(key, value)
    console.print(summary)
    table = Table("layer", "type", "output shape", "params", "MACs")
    for layer in result["layers"]:
        table.add_row(layer["name"], layer["type"], str(tuple(layer["output_shape"])),
                      f"{layer['params']:,}", f"{layer['macs']:,}")
    console.print(table)
    if args.device:
        from mobilekit.bench.devices import arm_lines

        for kind, section in result["arm"].items():
            console.print(f"[bold]{kind} .tflite (untrained weights, random calibration)[/bold]")
            for line in arm_lines(section):
                console.print("  " + line)
    return 0


def _untrained_arm(model, device_names: list[str]) -> dict:
    """Emulated counts and device predictions for the untrained float and int8 files of ``model``."""
    import numpy as np

    from mobilekit.bench.devices import arm_section
    from mobilekit.convert import convert_float, convert_int8

    calibration = np.random.default_rng(0).random((8, *model.input_shape[1:]), np.float32)
    return {kind: arm_section(content, device_names=device_names)
            for kind, content in (("float", convert_float(model)), ("int8", convert_int8(model, calibration)))}


def _cmd_emulate(args) -> int:
    import json

    from mobilekit.emulate import root

    if args.emulate_command == "setup":
        s = root.setup(force=args.force, mirror=args.mirror)
        return 0 if s["ready"] else EXIT_USAGE
    if args.emulate_command == "status":
        s = root.status()
        if args.json:
            print(json.dumps(s, indent=2))
        else:
            print(f"root: {s['root']}")
            print(f"ready: {'yes' if s['ready'] else 'no, ' + s['problem']}")
            for tool, where in s["tools"].items():
                print(f"{tool}: {where or 'missing (Debian package ' + root.HOST_TOOLS[tool] + ')'}")
            m = s.get("manifest")
            if m:
                print(f"guest: Python {m['guest_python']}, ai-edge-litert {m['ai_edge_litert']}, numpy {m['numpy']}")
                print(f"CPU models: {', '.join(m['cpus'])}")
        return 0 if s["ready"] else 1
    from mobilekit.bench import devices

    for name, d in devices.devices().items():
        cores = " + ".join(f"{n}x {core} @ {ghz:g} GHz" for core, n, ghz in d.clusters)
        print(f"{name:<20} {d.title}: {cores}; emulated as {d.qemu_cpu}, {d.threads} threads")
    fitted = devices.ipc()
    print(f"cost model: {devices.basis()}")
    print(f"fitted instructions per relative cycle: float {fitted['float']:.3f}, int8 {fitted['int8']:.3f}")
    return 0


def _cmd_explore(args) -> int:
    from mobilekit.explore.command import run

    return run(args, _training_options(args), _knobs(args), args.given_flags)


def _cmd_export(args) -> int:
    from mobilekit.export_android import export_android

    doc = export_android(args.build_dir, args.to)
    to = args.to or "android_demo/app/src/main/assets"
    print(f"{doc['model']}, {doc['labels']} and model.json -> {to}/ (input {doc['input']['shape']} "
          f"{doc['input']['dtype']}, {doc['num_classes']} classes, sha256 {doc['sha256'][:12]})")
    return 0


def _cmd_bench(args) -> int:
    from mobilekit.bench.command import run

    return run(args)


def _cmd_env(args) -> int:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from mobilekit.data import find_fashion_mnist

    print(f"{'python':<30} {platform.python_version()} ({sys.executable})")
    print(f"{'platform':<30} {platform.platform()} ({platform.machine()}, {os.cpu_count()} CPUs)")
    for pkg in ("mobilekit", "tensorflow", "tf-keras", "tensorflow-model-optimization",
                "ai-edge-litert", "numpy", "rich"):
        try:
            v = version(pkg)
        except PackageNotFoundError:
            v = "not installed"
        print(f"{pkg:<30} {v}")
    print(f"{'fashion-mnist':<30} {find_fashion_mnist() or 'not found'}")
    return 0


def _cmd_archs(args) -> int:
    from mobilekit import archs

    for name in archs.list_archs(args.pattern):
        print(name)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    # The flags written on the command line (explore: they win over a --spec file's values).
    args.given_flags = {t[2:].split("=")[0].replace("-", "_") for t in argv if t.startswith("--")}
    if args.version:
        from importlib.metadata import version
        print(f"mobilekit {version('mobilekit')}")
        return 0
    commands = {"build": _cmd_build, "info": _cmd_info, "bench": _cmd_bench, "emulate": _cmd_emulate, "env": _cmd_env,
                "explore": _cmd_explore, "export": _cmd_export,
                "archs": _cmd_archs}
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


if __name__ == "__main__":
    sys.exit(main())
