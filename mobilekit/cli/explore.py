"""`mobilekit explore`: the design-space exploration command (mobilekit.explore)."""

from __future__ import annotations

from mobilekit.cli.flags import add_arch_knobs, add_build_flags, add_positive, arch_kwargs_of, device_list, number

# The build settings explore names its own way: the sweep's folder and its one phone; and where one build's training
# runs (declared explore=False: a sweep spreads whole builds, with explore's own --address and --max-failures).
OWN_FLAGS = ("out", "devices", "workers", "address", "max_failures")


def add_parser(sub) -> None:
    x = sub.add_parser("explore", help="design-space exploration on Ray Tune: sweep knobs, targets, Pareto front",
                       description="Build many design points with `mobilekit build`'s own pipeline on Ray Tune "
                                   "(a local Ray by default, a cluster with --address), screen them against hard "
                                   "targets before training, and write results.csv/json, plots and explore.md: "
                                   "the Pareto front, saturation points and the recommended design. The build "
                                   "flags set the base point; --arch takes a comma list to span families. "
                                   "Resumable: the same command again runs only unfinished points.")
    add_build_flags(x, skip=OWN_FLAGS)
    add_arch_knobs(x.add_argument_group("architecture knobs (the base point)"))
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
    s.add_argument("--trials", type=number(int, 1, high=100000, what="--trials"), default=None,
                   help="designs Optuna samples (--search optuna)")
    s.add_argument("--seeds", type=number(int, 1, high=1000, what="--seeds"), default=None,
                   help="train each design with this many seeds (noise, saturation error bars; default: 1)")
    s.add_argument("--objectives", default=None, metavar="COL:max|min,...",
                   help="Pareto objectives (default: accuracy_int8:max,size_gzip_bytes:min)")
    tg = x.add_argument_group("targets (hard: violated before training -> screened out, never trained)")
    tg.add_argument("--min-accuracy", type=number(float, 0, low_open=True, high=1, what="--min-accuracy"),
                    default=None, help="int8 accuracy on the held-out set, a fraction (e.g. 0.85)")
    add_positive(tg, "--max-size-kb", "gzip'd int8 .tflite in KiB (1,024 bytes)")
    add_positive(tg, "--sram-kb", "int8 weights + peak activations must fit this SRAM in KiB (e.g. 8192)")
    add_positive(tg, "--fps", "frames per second on --device (predicted from emulated ARM counts)")
    add_positive(tg, "--energy-mj", "energy per frame in millijoules (45 nm model, docs/energy-model.md)")
    tg.add_argument("--device", type=device_list, default=None, metavar="NAME",
                    help="phone for latency and --fps (see `mobilekit emulate devices`; needs `mobilekit emulate "
                         "setup`)")
    r = x.add_argument_group("engine and output")
    r.add_argument("--out", default=None, metavar="DIR", help="sweep folder (default: build/explore)")
    r.add_argument("--address", default=None, metavar="HOST:PORT|auto",
                   help="run on an existing Ray cluster (`ray start --head`); default: a local Ray for this sweep")
    r.add_argument("--cpus-per-trial", type=number(float, 0, low_open=True, high=1024, what="--cpus-per-trial"),
                   default=None, help="Ray CPUs per design point (default: 1; concurrency = CPUs / this)")
    r.add_argument("--max-concurrent", type=number(int, 1, high=1000, what="--max-concurrent"), default=None,
                   help="at most this many points at once (default: what the CPUs allow)")
    r.add_argument("--max-points", type=number(int, 1, high=10**6, what="--max-points"), default=None,
                   help="refuse a sweep of more points than this, counted before any is made (default: 1000)")
    r.add_argument("--schedule-timeout", type=number(float, 1, high=86400, what="--schedule-timeout"), default=None,
                   metavar="SECONDS", help="stop the sweep when its points wait this long with none running "
                                           "(default: 600)")
    r.add_argument("--max-failures", type=number(int, 0, high=20, what="--max-failures"), default=None,
                   help="run a point again (on another node) this many times when its worker or node dies "
                        "(default: 2)")
    r.add_argument("--retry-failed", action="store_true", help="run failed points again on resume")
    r.add_argument("--report", default=None, metavar="DIR",
                   help="only re-render plots and explore.md from DIR/results.json (no training)")


def run(args) -> int:
    from mobilekit.cli.flags import settings_of
    from mobilekit.explore.command import run as run_explore

    return run_explore(args, settings_of(args, skip=OWN_FLAGS), arch_kwargs_of(args), args.given_flags)
