"""`mobilekit bench`: flags -> BenchConfig -> mobilekit.bench.command.run."""

from __future__ import annotations

import argparse

from mobilekit._checks import LIMITS
from mobilekit.cli.flags import add_device_flag, add_positive, boolean, cpu_list, number, thread_list


def add_parser(sub) -> None:
    bn = sub.add_parser("bench", help="time .tflite files at batch 1 in LiteRT (benchmark_model-style)",
                        description="Time one or more .tflite files at batch 1 in LiteRT, interleaved run by "
                                    "run, with benchmark_model's statistics, memory, ops, XNNPACK partitions "
                                    "and a flatbuffer analysis (MACs, weights, peak activations). Files are "
                                    "validated first and run in a child process, so a corrupt file is an "
                                    "error, never a crash.")
    bn.add_argument("models", nargs="*", metavar="MODEL.tflite",
                    help=".tflite files (and .onnx files, run in onnxruntime, with the peers extra)")
    bn.add_argument("--num_runs", type=number(int, 1, high=LIMITS["runs"], what="--num_runs"), default=50,
                    help="timed runs per model at least (default: %(default)s)")
    bn.add_argument("--warmup_runs", type=number(int, 0, high=LIMITS["runs"], what="--warmup_runs"), default=1,
                    help="runs before timing, reported as the warm-up mean (default: %(default)s)")
    bn.add_argument("--min_secs", type=number(float, 0, high=LIMITS["seconds"], what="--min_secs"), default=1.0,
                    help="keep timing until this many seconds have passed (default: %(default)s)")
    bn.add_argument("--num_threads", type=thread_list, default=[1], metavar="N[,N...]",
                    help="interpreter threads, one value or a list such as 1,2 (default: 1)")
    bn.add_argument("--use_xnnpack", type=boolean, default=True, metavar="true|false",
                    help="apply the XNNPACK delegate, as LiteRT does by default (default: true)")
    bn.add_argument("--input", default=None, metavar="FILE.npy",
                    help="input array (exact shape and dtype of the model input) instead of random values")
    bn.add_argument("--seed", type=number(int, 0, high=LIMITS["seed"], what="--seed"), default=0, help=argparse.SUPPRESS)
    bn.add_argument("--timeout", type=number(float, 1, high=LIMITS["seconds"], what="--timeout"), default=1800.0,
                    metavar="SECS", help="kill the isolated timing process after SECS (default: %(default)g)")
    pe = bn.add_argument_group("peers (pip install 'mobilekit[peers]')")
    pe.add_argument("--compare", choices=("onnxruntime",), default=None,
                    help="also convert --arch to ONNX (tf2onnx) and time onnxruntime float and QDQ int8 "
                         "next to LiteRT float and int8, interleaved")
    pe.add_argument("--arch", default=None, help="registered architecture for --compare")
    pe.add_argument("--input-size", type=number(int, 32, high=LIMITS["input_size"], what="--input-size"), default=224,
                    help="model input height and width (default: %(default)s)")
    pe.add_argument("--classes", type=number(int, 1, high=LIMITS["classes"], what="--classes"), default=1000,
                    help="output classes (default: %(default)s, ImageNet's)")
    bn.add_argument("--profile", action="store_true",
                    help="per-op time by op-prefix sub-models (see docs/bench.md), at the first thread count")
    tg = bn.add_argument_group("targets (the seed's design goals; docs/energy-model.md)")
    add_positive(tg, "--sram-kb", "on-chip SRAM budget in KiB (1,024 bytes): do weights + peak activations fit? "
                 "(e.g. 8192)")
    add_positive(tg, "--fps", "frame-rate target checked against the measured median (e.g. 15)")
    add_positive(tg, "--energy-mj", "energy budget per frame, against a 45 nm per-operation estimate (e.g. 2000)")
    arm = bn.add_argument_group("ARM (real aarch64 LiteRT kernels under qemu; `mobilekit emulate setup` first)")
    arm.add_argument("--emulate", type=cpu_list, default=[], metavar="CPU[,CPU...]",
                     help="count instructions per invoke on these qemu CPU models (e.g. cortex-a76,cortex-a53) "
                          "and check the outputs against the host run")
    arm.add_argument("--emulate-threads", type=thread_list, default=[1, 4], metavar="N[,N...]",
                     help="thread counts for --emulate (default: 1,4; counts are totals over threads)")
    arm.add_argument("--emulate-repeats", type=number(int, 1, high=100, what="--emulate-repeats"), default=2,
                     help="counted invokes per thread count after the first (default: %(default)s)")
    add_device_flag(arm, "each model's")
    arm.add_argument("--from-benchmark-model", action="append", default=[], metavar="LOG",
                     help="add results from a TFLite benchmark_model log (from a phone; see android_demo/benchmark/) "
                          "to the same table and JSON; repeat the flag for several logs")
    bn.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
    bn.add_argument("--csv", default=None, metavar="PATH", help="write one row per model and thread count")


def run(args) -> int:
    from mobilekit.bench.command import BenchConfig, run as run_bench

    return run_bench(BenchConfig.from_namespace(args))
