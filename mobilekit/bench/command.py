"""`mobilekit bench MODEL.tflite [MODEL2 ...]`: validate, run isolated, print, write JSON/CSV."""

from __future__ import annotations

import gzip
import os
import platform
from dataclasses import dataclass, fields
from importlib.metadata import version
from pathlib import Path

import numpy as np

from mobilekit.errors import MobilekitError
from mobilekit.report import STAT_FIELDS, bench_csv, print_bench_tables  # noqa: F401  (STAT_FIELDS re-exported)

@dataclass(frozen=True)
class BenchConfig:
    """What `mobilekit bench` runs: the files, benchmark_model's timing settings, targets, ARM emulation,
    peers and outputs. Example: ``run(BenchConfig(models=("a.tflite",), num_threads=(1, 2)))``."""

    models: tuple[str, ...] = ()
    num_runs: int = 50
    warmup_runs: int = 1
    min_secs: float = 1.0
    num_threads: tuple[int, ...] = (1,)
    use_xnnpack: bool = True
    input: str | None = None  # a .npy input array instead of random values
    seed: int = 0
    compare: str | None = None  # "onnxruntime": also convert ``arch`` with tf2onnx and time the peers
    arch: str | None = None
    input_size: int = 224
    classes: int = 1000
    profile: bool = False
    sram_kb: float | None = None
    fps: float | None = None
    energy_mj: float | None = None
    emulate: tuple[str, ...] = ()
    emulate_threads: tuple[int, ...] = (1, 4)
    emulate_repeats: int = 2
    device: tuple[str, ...] = ()
    from_benchmark_model: tuple[str, ...] = ()
    json: str | None = None
    csv: str | None = None
    timeout: float = 1800.0  # seconds the isolated timing child may take before it is killed

    @classmethod
    def from_namespace(cls, ns) -> "BenchConfig":
        """From parsed flags of the same names (lists become tuples)."""
        values = {}
        for f in fields(cls):
            v = getattr(ns, f.name)
            values[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**values)


def _tensor_info(t) -> dict:
    return {"name": t.name, "dtype": t.dtype.lower(), "shape": list(t.shape),
            "scale": [float(s) for s in t.scale] if t.scale is not None and len(t.scale) else None,
            "zero_point": [int(z) for z in t.zero_point] if t.zero_point is not None and len(t.zero_point)
            else None}


def _outputs_info(f) -> list[dict]:
    """The file's outputs; a detector's (TFLite_Detection_PostProcess's, shaped only at run time) with their role
    and the shape the op gives them."""
    roles = f.detector_outputs() or {}
    out = []
    for t in f.outputs:
        info = _tensor_info(t)
        if t.index in roles:
            info["role"], info["shape"] = roles[t.index]
        out.append(info)
    return out


def read_model(path: str) -> tuple[dict, object, dict]:
    """(report fields, TfliteFile, analysis) known without running it; a bad file is a MobilekitError."""
    from mobilekit.complexity import analyze
    from mobilekit.tflite_file import TfliteFile

    p = Path(path)
    if not p.is_file():
        raise MobilekitError(f"no such model file: {path!r}")
    content = p.read_bytes()
    if p.suffix.lower() == ".onnx":
        from mobilekit.bench.peers import check_onnx

        info = {"path": path, "runtime": "onnxruntime", "size_bytes": len(content),
                "gzip_bytes": len(gzip.compress(content, 9, mtime=0)), **check_onnx(path, content),
                "analysis": None}
        return info, None, None
    try:
        f = TfliteFile(content)
        problems = f.structure_problems()
        if problems:
            raise MobilekitError(f"corrupt TFLite flatbuffer: {problems[0]}")
        info = {"path": path, "runtime": "litert", "size_bytes": len(content),
                "gzip_bytes": len(gzip.compress(content, 9, mtime=0)),
                "inputs": [_tensor_info(t) for t in f.inputs], "outputs": _outputs_info(f),
                "ops": f.op_counts()}
        from mobilekit.precision import layer_precisions

        info["precision"] = {k: v for k, v in layer_precisions(content).items() if k != "layers"}
        from mobilekit.app_metadata import section

        info["app"] = section(f)
        a = analyze(f)
    except MobilekitError as e:
        raise MobilekitError(f"{path}: {e}") from None
    except Exception as e:  # a consistent-looking file can still hold nonsense the reader trips on
        raise MobilekitError(f"{path}: corrupt TFLite flatbuffer ({type(e).__name__})") from None
    from dataclasses import asdict

    info["analysis"] = {"macs": a["macs"], "weight_bytes": a["weight_bytes"],
                        "peak_activation_bytes": a["peak_activation"]["bytes"],
                        "peak_activation_at_op": a["peak_activation"]["op"], "by_op_type": a["by_op_type"],
                        "ops": a["ops"], "activation_lifetimes": [asdict(lt) for lt in a["activation_lifetimes"]]}
    return info, f, a


def check_input_array(path: str, models: list[dict]) -> None:
    """``--input`` must load without pickle and match every model's single input."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MobilekitError(f"--input {path!r} is not a readable .npy array ({str(e).splitlines()[0]})") from None
    for m in models:
        if len(m["inputs"]) != 1:
            raise MobilekitError(f"--input needs single-input models; {m['path']} has {len(m['inputs'])}")
        want = m["inputs"][0]
        if list(array.shape) != want["shape"] or array.dtype != np.dtype(want["dtype"]):
            raise MobilekitError(f"--input {path!r} is {array.dtype}{list(array.shape)}; {m['path']} takes "
                                 f"{want['dtype']}{want['shape']}")


def run(args: BenchConfig) -> int:
    import shutil
    import tempfile

    from mobilekit.files import check_output_files, json_with_keys, text_starting_with
    from mobilekit.report import BENCH_CSV_HEADER

    check_output_files(  # before any work
        [("--json", args.json, "a bench JSON", json_with_keys("schema_version", "settings", "models")),
         ("--csv", args.csv, "a bench CSV", text_starting_with(",".join(BENCH_CSV_HEADER)))],
        inputs=[*(("MODEL", m) for m in args.models), ("--input", args.input),
                *(("--from-benchmark-model", log) for log in args.from_benchmark_model)])
    paths = list(args.models)
    if args.compare is None and args.arch is not None:
        raise MobilekitError("--arch is used with --compare onnxruntime")
    if args.compare is not None:
        from mobilekit import archs
        from mobilekit.bench.peers import export_peers, require_peers

        if args.arch is None:
            raise MobilekitError("--compare onnxruntime needs --arch NAME (the Keras model to convert)")
        arch = archs.resolve(args.arch)
        require_peers()
        peer_dir = tempfile.mkdtemp(prefix="mobilekit-peers-")
        try:
            paths += export_peers(arch, args.input_size, args.classes, Path(peer_dir))
            return _run(args, paths)
        finally:
            shutil.rmtree(peer_dir, ignore_errors=True)
    if not paths and not args.from_benchmark_model:
        raise MobilekitError("give MODEL.tflite files, --from-benchmark-model LOG, or --compare onnxruntime --arch NAME")
    return _run(args, paths)


def _run(args: BenchConfig, paths: list[str]) -> int:
    from mobilekit.files import write_json_atomic, write_text_atomic
    from mobilekit.bench.energy import check_targets
    from mobilekit.bench.benchmark_model import read as read_log
    from mobilekit.bench.isolated import run_isolated

    logs = [read_log(p) for p in args.from_benchmark_model]
    if args.emulate or args.device:
        from mobilekit.emulate.root import require_ready
        require_ready()
    models, infos, parsed = [], [], []
    for path in paths:
        info, f, a = read_model(path)
        models.append(path)
        infos.append(info)
        parsed.append((f, a))
    if args.input:
        check_input_array(args.input, infos)
    runs = run_isolated(models, num_runs=args.num_runs, warmup_runs=args.warmup_runs, min_secs=args.min_secs,
                        num_threads=args.num_threads, use_xnnpack=args.use_xnnpack, input_path=args.input,
                        seed=args.seed, profile=args.profile, timeout=args.timeout) if models else {}
    profiles = runs.pop("profile", {})
    targets = {"sram_kb": args.sram_kb, "fps": args.fps, "energy_mj": args.energy_mj}
    for info, (f, a) in zip(infos, parsed):
        info["runs"] = {threads: per_model[info["path"]] for threads, per_model in runs.items()}
        median = info["runs"][str(args.num_threads[0])]["median_ms"]
        info["targets"] = check_targets(f, a, median, **targets) if f is not None else {}
        if info["path"] in profiles:
            info["profile"] = profiles[info["path"]]
        if (args.emulate or args.device) and info["runtime"] == "litert":
            from mobilekit.bench.devices import arm_section

            inputs = [np.load(args.input, allow_pickle=False)] if args.input else None
            info["arm"] = arm_section(Path(info["path"]).read_bytes(), cpus=args.emulate, device_names=args.device,
                                      threads=args.emulate_threads, repeats=args.emulate_repeats, inputs=inputs)
    from mobilekit.hostinfo import cpu_info
    from mobilekit.schema import BenchEntry, BenchResult

    settings = {"num_runs": args.num_runs, "warmup_runs": args.warmup_runs, "min_secs": args.min_secs,
                "num_threads": list(args.num_threads), "use_xnnpack": args.use_xnnpack,
                "input": args.input or "random in each input's dtype range", "seed": args.seed, "batch": 1,
                "interleaved": True, "targets": targets, "profile": args.profile, "emulate": list(args.emulate),
                "emulate_threads": list(args.emulate_threads), "emulate_repeats": args.emulate_repeats,
                "devices": list(args.device)}
    document = BenchResult(
        settings=settings,
        host={"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
              "cpu": cpu_info()},
        versions={"mobilekit": version("mobilekit"), "ai_edge_litert": version("ai-edge-litert")},
        models=[BenchEntry.from_dict(info) for info in infos] + logs)
    result = document.to_dict()
    print_bench_tables(result)
    if args.json:
        write_json_atomic(Path(args.json), result)
    if args.csv:
        write_text_atomic(Path(args.csv), bench_csv(result))
    return 0
