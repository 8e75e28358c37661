"""`mobilekit info`: an arch's complexity without training (mobilekit.model_info.info), or what a .tflite is for an
app (its inputs and outputs, TFLite metadata, the runtimes it fits), as tables or JSON."""

from __future__ import annotations

from mobilekit._checks import LIMITS
from mobilekit.cli.flags import add_arch_knobs, add_device_flag, arch_kwargs_of, number, setting_type
from mobilekit.pipeline.config import SETTINGS

# A detector described without a class count: the embedded detection set's (Fashion-MNIST's ten).
DETECTOR_CLASSES = 10


def add_parser(sub) -> None:
    i = sub.add_parser("info", help="params, MACs, weight bytes, peak activations, per-layer table",
                       description="Complexity of an architecture without training: parameters, "
                                   "MACs, weight bytes after BN folding (float32 and int8), peak live "
                                   "activation memory at batch 1, and a per-layer table.")
    i.add_argument("tflite", nargs="?", default=None, metavar="FILE.tflite", help=(
        "a .tflite to describe instead of an arch: size, ops, inputs and outputs, its TFLite metadata and the app "
        "runtimes it fits (read as data, never run)"))
    i.add_argument("--arch", default="squeezenet", help="registered architecture")
    i.add_argument("--input-size", type=setting_type(SETTINGS["input_size"]), default=None, metavar="N|HxW",
                    help="model input side, or HxW (default: 224; a detector's 128, as its build)")
    i.add_argument("--classes", type=number(int, 1, high=LIMITS["classes"], what="--classes"), default=None,
                    help="output classes (default: 1000, ImageNet's; a detector's 10, the embedded set's)")
    i.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_device_flag(i, "the untrained float and int8 files'")
    add_arch_knobs(i.add_argument_group("architecture knobs"))


def run(args) -> int:
    import json

    if args.tflite is not None:
        return run_file(args)
    from mobilekit import archs

    arch = archs.resolve(args.arch)
    arch_kwargs = arch_kwargs_of(args)
    archs.check_kwargs(arch, arch_kwargs)  # before TensorFlow loads
    if args.device:
        from mobilekit.emulate.root import require_ready
        require_ready()

    from mobilekit.model_info import info

    if archs.task_of(arch) == "detection":
        from mobilekit.pipeline.config import DETECTION_DEFAULTS

        defaults = (DETECTION_DEFAULTS["input_size"], DETECTOR_CLASSES)
    else:
        defaults = (224, 1000)
    result, model = info(arch, args.input_size or defaults[0], args.classes or defaults[1], arch_kwargs, args.device,
                         return_model=True)
    peak = result["peak_activation_bytes"]["int8"]
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


def run_file(args) -> int:
    """``mobilekit info FILE.tflite``: what an app needs to know of the file, read with bench's safe reader."""
    import json

    from mobilekit.app_metadata import summary
    from mobilekit.bench.command import read_model
    from mobilekit.errors import MobilekitError

    if not args.tflite.lower().endswith(".tflite"):
        raise MobilekitError(f"info takes a .tflite file; received {args.tflite!r}")
    if args.device or args.arch != "squeezenet" or arch_kwargs_of(args):
        raise MobilekitError("info FILE.tflite describes the file: --arch, its knobs and --device are for an arch "
                             "(for a file's device latency: mobilekit bench FILE.tflite --device NAME)")
    doc, _, _ = read_model(args.tflite)
    doc["analysis"] = {k: doc["analysis"][k] for k in ("macs", "weight_bytes", "peak_activation_bytes")}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    def tensor(t: dict) -> str:
        q = f" (scale {t['scale'][0]:.6g}, zero point {t['zero_point'][0]})" if t["scale"] else ""
        return (f"{t['role']} " if t.get("role") else "") + f"{t['dtype']}{t['shape']}{q}"

    table = Table(title=args.tflite, show_header=False)
    for label, text in (("size", f"{doc['size_bytes']:,} bytes ({doc['gzip_bytes']:,} gzip'd)"),
                        ("inputs", ", ".join(map(tensor, doc["inputs"]))),
                        ("outputs", ", ".join(map(tensor, doc["outputs"]))),
                        ("ops", ", ".join(f"{k} x{v}" for k, v in doc["ops"].items())),
                        ("MACs", f"{doc['analysis']['macs']:,}"), *summary(doc["app"])):
        table.add_row(label, text)
    Console().print(table)
    return 0
