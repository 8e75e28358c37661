"""Bad input anywhere in the CLI: one line on stderr naming the bad value, exit code 2, no traceback, and
nothing written (the working folder is compared file by file before and after)."""

from pathlib import Path

import pytest

from mobilekit.schema import BuildReport

LOGS = {
    "threads_abc.log": "Num threads: [abc]\ncount=50 first=1 curr=1 min=1 max=1 avg=1 std=0\n",
    "avg_junk.log": "count=50 first=1 curr=1 min=1 max=1 avg=1e+e std=0\n",
    "init_dots.log": ("count=50 first=1 curr=1 min=1 max=1 avg=1 std=0\n"
                      "Inference timings in us: Init: 1.2.3, First inference: 5, Inference (avg): 1\n"),
    "overall_dots.log": ("count=50 first=1 curr=1 min=1 max=1 avg=1 std=0\n"
                         "Memory footprint delta from the start of the tool (MB): init=1 overall=4.5.6\n"),
    "count_huge.log": "count=99999999999999999999999 first=1 curr=1 min=1 max=1 avg=1 std=0\n",
    "threads_negative.log": "Num threads: [-3]\ncount=50 first=1 curr=1 min=1 max=1 avg=1 std=0\n",
    "no_timings.log": "nothing to see here\n",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Files the cases point at: models that are not models, logs, data folders, an earlier unrelated folder."""
    w = tmp_path_factory.mktemp("bad-input")
    (w / "notes.txt").write_text("not a model\n")
    (w / "random.tflite").write_bytes(bytes(range(256)) * 8)
    (w / "empty.tflite").write_bytes(b"")
    (w / "a-file").write_text("")
    (w / "not-empty").mkdir()
    (w / "not-empty" / "thesis.tex").write_text("precious")
    (w / "teacher-dir").mkdir()
    for name, text in LOGS.items():
        (w / name).write_text(text)
    for root, classes in (("one-class", ["cats"]), ("control-chars", ["cats", "dogs\nhorses"]),
                          ("blank-class", ["cats", " "]), ("two-class", ["cats", "dogs"]),
                          ("other-classes", ["cats", "horses"])):
        for c in classes:
            (w / root / c).mkdir(parents=True)
            for i in range(3):
                (w / root / c / f"{i}.png").write_bytes(b"\x89PNG not decoded: the structure is refused first")
    (w / "spec.yaml").write_text("space: {nope: [1, 2]}\n")
    (w / "spec-bad.yaml").write_text("space: [unclosed\n")
    for name, text in SPECS.items():
        (w / name).write_text(text)
    (w / "user-results").mkdir()  # a user's own folder that happens to hold files named like a sweep's
    (w / "user-results" / "results.json").write_text('{"mine": true}\n')
    (w / "user-results" / "explore.md").write_text("my notes\n")
    (w / "a-build").mkdir()  # a build's folder: export tflite must not replace its files
    (w / "a-build" / "report.json").write_text("{}\n")
    (w / "a-build" / "squeezenet1_1_float.tflite").write_bytes(b"trained")
    (w / "damaged-sweep").mkdir()
    (w / "damaged-sweep" / "results.json").write_text(
        '{"schema_version": 1, "sweep": {"space": 3}, "counts": {}, "screened_out": {}, "saturation": {}, "rows": []}')
    (w / "torn-sweep").mkdir()
    (w / "torn-sweep" / "results.json").write_text('{"schema_version": 1, "sweep": {')
    _tampered_build(w / "tampered", "../../escaped")
    return w


def _tampered_build(d: Path, arch: str) -> None:
    """A build folder whose report.json is consistent except for ``arch``, a path."""
    import hashlib
    import json

    d.mkdir()
    (d / "m.tflite").write_bytes(b"model bytes")
    (d / "labels.txt").write_text("a\nb\n")
    report = BuildReport(
        arch=arch, sha256=hashlib.sha256(b"model bytes").hexdigest(), classes=["a", "b"], num_classes=2,
        files={"tflite": "m.tflite", "labels": "labels.txt"},
        preprocessing={"size": [32, 32], "scale": 1 / 255, "offset": 0},
        quantization={"input": {"scale": 1 / 255, "zero_point": -128},
                      "output": {"scale": 1 / 256, "zero_point": -128}},
        metaparameters={}, input_shape=[32, 32, 3], params=1, macs=1, sizes={}, ops={}, sparsity={}, accuracy={},
        latency={}, seed=0, config={}, versions={}, stage_seconds={})
    (d / "report.json").write_text(json.dumps(report.to_dict()))


SPECS = {  # spec files with one defect each
    "spec-out-list.yaml": "out: [1]\nspace: {squeeze_ratio: [0.5]}\n",
    "spec-device-number.yaml": "device: 5\nspace: {squeeze_ratio: [0.5]}\n",
    "spec-address-number.yaml": "address: 7\nspace: {squeeze_ratio: [0.5]}\n",
    "spec-arch-mapping.yaml": "arch: {a: 1}\nspace: {squeeze_ratio: [0.5]}\n",
    "spec-space-scalar.yaml": "space: {squeeze_ratio: 0.5}\n",
    "spec-duplicate.yaml": "space: {squeeze_ratio: [0.25]}\nspace: {pct3x3: [0.5]}\n",
    "spec-duplicate.json": '{"seeds": 1, "seeds": 2, "space": {"squeeze_ratio": [0.5]}}',
    "spec-underscore.yaml": "seeds: 1_0\nspace: {squeeze_ratio: [0.5]}\n",
    "spec-hex.yaml": "space: {input_size: [0x20]}\n",
    "spec-nan.json": '{"space": {"squeeze_ratio": [NaN]}}',
}
GRID = ",".join(f"{i / 1000:.3f}" for i in range(1, 1001))  # 1,000 values: a 1,000,000-point grid with two knobs


CASES = [
    # build: settings
    (["build", "--arch", "resnet50"], "resnet50"),
    (["build", "--epochs", "-1"], "--epochs"),
    (["build", "--epochs", "1e308"], "epochs must be a number in [0, 1000]; received epochs=1e+308"),
    (["build", "--epochs", "nan"], "--epochs"),
    (["build", "--seed", "1099511627776"], "seed must be an int in [0, 2,147,483,647]"),
    (["build", "--seed", "-1"], "--seed"),
    (["build", "--input-size", "20000"], "input_size must be an int in [1, 1024]"),
    (["build", "--input-size", "0"], "--input-size"),
    (["build", "--arch", "squeezedet", "--input-size", "96x2000"], "or HxW: a height and a width in that range"),
    (["build", "--arch", "squeezedet", "--input-size", "96x"], "input_size takes int or HxW values"),
    (["build", "--input-size", "96x160"], "input_size=96x160: squeezenet1_1 is a classifier"),
    (["build", "--sparsity", "1"], "sparsity"),
    (["build", "--sparsity", "-0.1"], "sparsity"),
    (["build", "--clusters", "1"], "clusters"),
    (["build", "--clusters", "1000"], "clusters"),
    (["build", "--batch-size", "0"], "--batch-size"),
    (["build", "--batch-size", "1000000"], "batch_size must be an int in [1, 65,536]"),
    (["build", "--lr", "0"], "--lr"),
    (["build", "--lr", "1e9"], "lr must be a number in (0, 10]"),
    (["build", "--recipe", "nope"], "nope"),
    (["build", "--recipe", "missing.json"], "missing.json"),
    (["build", "--limit-train", "0"], "--limit-train"),
    (["build", "--latency-runs", "0"], "--latency-runs"),
    (["build", "--latency-runs", "99999999999"], "latency_runs must be an int in [1, 1,000,000]"),
    (["build", "--prune-epochs", "0"], "prune_epochs"),
    (["build", "--distill-alpha", "2", "--teacher", "squeezenet1_0"], "--distill-alpha"),
    (["build", "--squeeze-ratio", "abc"], "abc"),
    (["build", "--arch", "mobilenet_v1", "--groups", "3"], "groups"),
    (["build", "--device", "nope-phone"], "nope-phone"),
    (["build", "--weights", "imagenet", "--arch", "squeezenet"], "no offline"),
    (["build", "--weights", "imagenet", "--arch", "mobilenet_v2", "--epochs", "3"], "epochs=3.0"),
    # build: files and folders
    (["build", "--out", ""], "out"),
    (["build", "--out", "a-file"], "a-file"),
    (["build", "--out", "a-file/sub"], "a-file"),
    (["build", "--out", "not-empty"], "not empty"),
    (["build", "--out", "/proc/mobilekit-out"], "not writable"),
    (["build", "--data", "missing-dir"], "missing-dir"),
    (["build", "--data", "notes.txt"], "not a folder"),
    (["build", "--data", "one-class"], "only one class"),
    (["build", "--data", "control-chars"], "control or line-break character"),
    (["build", "--data", "blank-class"], "blank name"),
    (["build", "--teacher", "missing.h5"], "not found"),
    (["build", "--teacher", "teacher-dir/"], "is a folder"),
    (["build", "--teacher", "notes.txt"], "must end in"),
    (["build", "--teacher", "random.tflite"], "must end in"),
    (["build", "--teacher", "resnet50"], "resnet50"),
    (["build", "--size-only", "--out", "a-file"], "a-file"),
    (["build", "--size-only", "--out", "not-empty"], "holds no size-report.json"),
    (["build", "--calibration", "mse"], "post-training quantization only"),
    (["build", "--recipe", "int8-qat", "--bias-correction"], "post-training quantization only"),
    (["build", "--calibration", "kl"], "kl"),
    (["build", "--max-accuracy-drop", "-1"], "--max-accuracy-drop"),
    (["build", "--max-accuracy-drop", "101"], "max_accuracy_drop must be a number in [0, 100]"),
    (["build", "--max-accuracy-drop", "1", "--recipe", "int8-ptq"], "recipe 'int8-ptq' has none to vary"),
    (["build", "--max-accuracy-drop", "1", "--sparsity", "0"], "sparsity=0 has none to vary"),
    (["build", "--strict-budget", "--sparsity", "0.5"], "strict_budget=True needs an accuracy budget"),
    (["build", "--validation-split", "0.9"], "validation_split must be a number in (0, 0.5]"),
    # numerics
    (["numerics", "missing.tflite", "--reference", "random.tflite"], "missing.tflite"),
    (["numerics", "notes.txt", "--reference", "random.tflite"], "not a TFLite"),
    (["numerics", "random.tflite", "--reference", "random.tflite"], "int8 'random.tflite': not a TFLite"),
    (["numerics", "random.tflite"], "--reference"),
    (["numerics", "random.tflite", "--reference", "random.tflite", "--images", "0"], "--images"),
    (["numerics", "random.tflite", "--reference", "random.tflite", "--json", "not-empty"], "is a folder"),
    (["numerics", "random.tflite", "--reference", "teacher-dir/x.h5"], "no such --reference file"),
    # info
    (["info", "--arch", "nope"], "nope"),
    (["info", "--input-size", "5000"], "input_size must be an int in [1, 1024], or HxW"),
    (["info", "--arch", "squeezedet", "--input-size", "96x0"], "received input_size='96x0'"),
    (["info", "--classes", "0"], "--classes"),
    (["info", "--arch", "shufflenet_v1", "--groups", "5"], "groups"),
    # bench
    (["bench"], "give MODEL"),
    (["bench", "missing.tflite"], "missing.tflite"),
    (["bench", "notes.txt"], "notes.txt"),
    (["bench", "random.tflite"], "random.tflite"),
    (["bench", "empty.tflite"], "empty.tflite"),
    (["bench", "notes.txt", "--num_threads", "100000"], "thread counts must be ints in [1, 64]"),
    (["bench", "notes.txt", "--num_threads", "0"], "thread counts"),
    (["bench", "notes.txt", "--num_runs", "0"], "--num_runs"),
    (["bench", "notes.txt", "--timeout", "0"], "--timeout"),
    (["bench", "notes.txt", "--min_secs", "1e12"], "--min_secs must be <="),
    (["bench", "notes.txt", "--json", "."], "is a folder"),
    (["bench", "notes.txt", "--json", "not-empty"], "is a folder"),
    (["bench", "notes.txt", "--csv", "/proc/x.csv"], "not writable"),
    (["bench", "notes.txt", "--emulate", "max"], "max"),
    (["bench", "notes.txt", "--device", "nope-phone"], "nope-phone"),
    (["bench", "--arch", "squeezenet"], "--compare"),
    (["bench", "--from-benchmark-model", "missing.log"], "missing.log"),
    *[(["bench", "--from-benchmark-model", name], name) for name in LOGS],
    # explore
    (["explore", "--space", "nope=1,2"], "nope"),
    (["explore", "--space", "squeeze_ratio="], "squeeze_ratio"),
    (["explore", "--search", "bogus"], "bogus"),
    (["explore", "--fps", "30"], "device"),
    (["explore", "--spec", "missing.yaml"], "missing.yaml"),
    (["explore", "--spec", "spec.yaml"], "nope"),
    (["explore", "--spec", "spec-bad.yaml"], "spec-bad.yaml"),
    (["explore", "--address", "127.0.0.1:1"], "127.0.0.1:1"),
    (["explore", "--seeds", "0"], "--seeds"),
    (["explore", "--space", "max_accuracy_drop=1,200"], "max_accuracy_drop must be a number in [0, 100]"),
    (["explore", "--space", "max_accuracy_drop=1", "--recipe", "int8-ptq"], "has none to vary"),
    # explore: folders that are not a sweep's, duplicates, numbers, bounds, addresses, spec types
    (["explore", "--space", "squeeze_ratio=0.5", "--out", "not-empty"], "holds no sweep"),
    (["explore", "--space", "squeeze_ratio=0.5", "--out", "user-results"], "holds no sweep"),
    (["explore", "--space", "squeeze_ratio=0.5", "--out", "a-file"], "a-file"),
    (["explore", "--space", "squeeze_ratio=0.25", "--space", "squeeze_ratio=0.5"], "names squeeze_ratio twice"),
    (["explore", "--space", "squeeze_ratio=\uff10.5"], "received squeeze_ratio='\uff10.5'"),
    (["explore", "--space", "input_size=3_2"], "received input_size='3_2'"),
    (["explore", "--seeds", "1_0"], "--seeds"),
    (["explore", "--space", f"squeeze_ratio={GRID}", "--space", f"pct3x3={GRID}"], "asks for 1,000,000 points"),
    (["explore", "--space", "squeeze_ratio=0.25,0.5", "--max-points", "1"], "more than --max-points 1"),
    (["explore", "--space", "squeeze_ratio=0.5", "--cpus-per-trial", "1000"], "no trial could ever start"),
    (["explore", "--space", "squeeze_ratio=0.5", "--schedule-timeout", "0"], "--schedule-timeout"),
    (["explore", "--space", "squeeze_ratio=0.5", "--address", "ray://127.0.0.1:10001"], "ray://"),
    (["explore", "--space", "squeeze_ratio=0.5", "--address", "http://127.0.0.1:8265"], "ray job submit"),
    (["explore", "--space", "squeeze_ratio=0.5", "--address", "[::1]:1"], "[::1]:1"),
    (["explore", "--space", "squeeze_ratio=0.5", "--max-failures", "-1"], "--max-failures must be >= 0"),
    (["explore", "--space", "squeeze_ratio=0.5", "--max-failures", "21"], "--max-failures must be <= 20"),
    (["explore", "--space", "squeeze_ratio=0.5", "--max-failures", "1.5"], "invalid --max-failures: '1.5'"),
    (["explore", "--space", "squeeze_ratio=0.5", "--teacher", "teacher.keras", "--address", "127.0.0.1:1"],
     "does not travel to a cluster's workers"),
    (["explore", "--space", "squeeze_ratio=0.5", "--address", "::1:1"], "[IPv6]:PORT"),
    (["explore", "--space", "squeeze_ratio=0.5", "--address", "127.0.0.1:99999"], "127.0.0.1:99999"),
    (["explore", "--spec", "spec-out-list.yaml"], "out must be str"),
    (["explore", "--spec", "spec-device-number.yaml"], "device must be str"),
    (["explore", "--spec", "spec-address-number.yaml"], "address must be str"),
    (["explore", "--spec", "spec-arch-mapping.yaml"], "arch must be str or a list"),
    (["explore", "--spec", "spec-space-scalar.yaml"], "space.squeeze_ratio must be a list"),
    (["explore", "--spec", "spec-duplicate.yaml"], "duplicate key 'space'"),
    (["explore", "--spec", "spec-duplicate.json"], "duplicate key 'seeds'"),
    (["explore", "--spec", "spec-underscore.yaml"], "'1_0' is not a plain decimal number"),
    (["explore", "--spec", "spec-hex.yaml"], "'0x20' is not a plain decimal number"),
    (["explore", "--spec", "spec-nan.json"], "NaN is not a number here"),
    (["explore", "--report", "damaged-sweep"], "sweep.space is missing or not a dict"),
    (["explore", "--report", "torn-sweep"], "is damaged"),
    (["explore", "--report", "user-results"], "schema_version"),
    # export, emulate, top level
    (["export", "android", "missing-dir"], "missing-dir"),
    (["export", "android", "not-empty"], "not-empty"),
    (["emulate", "bogus"], "bogus"),
    # export tflite
    (["export", "tflite", "--arch", "nosuchnet", "--out", "x"], "nosuchnet"),
    (["export", "tflite", "--arch", "squeezenet1_1", "--rewrites", "pad-fold,bogus", "--out", "x"],
     "unknown graph rewrite 'bogus'"),
    (["export", "tflite", "--arch", "squeezenet1_1", "--alpha", "0.5", "--out", "x"], "no metaparameter 'alpha'"),
    (["export", "tflite", "--arch", "squeezenet1_1", "--input-size", "0", "--out", "x"], "--input-size"),
    (["export", "tflite", "--arch", "squeezenet1_1", "--out", "a-file"], "a-file"),
    (["export", "tflite", "--arch", "squeezenet1_1", "--out", "a-build"], "holds no export.json"),
    (["export", "tflite", "--arch", "squeezenet1_1", "--out", "not-empty"], "holds no export.json"),
    (["export", "tflite", "--arch", "mobilenet_v1", "--alpha", "0.001", "--out", "x"], "makes an invalid layer"),
    (["export", "android", "tampered", "--to", "app-assets"], "'../../escaped'"),
    (["export", "android", "tampered", "--to", "not-empty"], "holds no model.json"),
    (["build", "--rewrites", "space-to-depth-stem"], "changes kernels"),
    # build: transfer learning
    (["build", "--arch", "squeezenet1_1", "--weights", "imagenet", "--data", "two-class"],
     "no offline 'imagenet' weights for squeezenet1_1"),
    (["build", "--arch", "mobilenet_v2", "--weights", "imagenet", "--data", "two-class", "--fine-tune", "block_99"],
     "fine_tune='block_99' names no block"),
    (["build", "--arch", "efficientnet_lite0", "--weights", "imagenet", "--data", "two-class", "--fine-tune",
      "banana"], "fine_tune must be all, none, block_N"),
    (["build", "--arch", "mobilenet_v2", "--weights", "imagenet", "--data", "two-class", "--fine-tune", "1.5"],
     "fine_tune='1.5'"),
    (["build", "--arch", "efficientnet_lite0", "--weights", "imagenet", "--data", "two-class", "--input-size", "16"],
     "input_shape=(16, 16, 3) is too small"),
    (["build", "--arch", "mobilenet_v2", "--weights", "imagenet", "--data", "two-class", "--test-data",
      "other-classes"], "only in the test folder: 'horses'"),
    (["build", "--fine-tune", "all"], "needs pretrained weights and data"),
    (["build", "--data", "two-class", "--head-epochs", "3"], "head_epochs=3.0 needs pretrained weights"),
    (["build", "--test-data", "two-class"], "needs data=DIR"),
    (["build", "--label-smoothing", "0.9"], "label_smoothing must be a number in [0, 0.5]"),
    (["build", "--teacher", "squeezenet1_0:imagenet", "--data", "two-class"], "no offline 'imagenet' weights"),
    (["build", "--arch", "mobilenet_v2", "--weights", "imagenet", "--fine-tune-lr", "0"], "--fine-tune-lr"),
    # build: mixed precision
    (["build", "--keep-float", "nosuchlayer"], "--keep-float 'nosuchlayer' matches no layer"),
    (["build", "--int16", "fire9_*,zz*"], "--int16 'zz*' matches no layer"),
    (["build", "--precision", "auto", "--max-agreement-drop", "60"], "max_agreement_drop must be a number in [0, 50]"),
    (["build", "--precision", "auto", "--max-agreement-drop", "-1"], "--max-agreement-drop"),
    (["build", "--max-agreement-drop", "1"], "set the budget of precision='auto'"),
    (["build", "--precision", "auto", "--max-agreement-drop", "1", "--min-output-sqnr", "20"], "give one budget"),
    (["build", "--precision", "fp4"], "'fp4'"),
    (["build", "--precision", "int16x8", "--int16", "conv1_relu"], "every layer has int16 activations"),
    (["build", "--keep-float", "conv1_relu", "--int16", "conv1_*"], "both --keep-float and --int16"),
    (["build", "--keep-float", ","], "name at least one layer"),
    # names as the converted file has them, checked before any data is read, in every mode
    (["build", "--keep-float", "conv1"], "--keep-float 'conv1' matches no layer"),
    (["build", "--int16", "input"], "--int16 'input' matches no layer"),
    (["build", "--arch", "mobilenet_v2", "--weights", "imagenet", "--data", "two-class", "--input-size", "96",
      "--keep-float", "nosuchlayer"], "--keep-float 'nosuchlayer' matches no layer"),
    # settings that cannot apply are refused, never recorded as applied
    (["build", "--arch", "efficientnet_lite0", "--weights", "imagenet", "--data", "two-class",
      "--width-coefficient", "1.2"], "width_coefficient=1.2 does not apply to weights='imagenet'"),
    (["build", "--arch", "mobilenet_v2", "--weights", "imagenet", "--data", "two-class", "--alpha", "0.5"],
     "alpha=0.5 does not apply to weights='imagenet'"),
    (["build", "--data", ""], "data must name a folder"),
    (["build", "--data", "two-class", "--test-data", ""], "test_data must name a folder"),
    (["build", "--data", "two-class", "--test-data", "two-class"], "is the data folder"),
    (["build", "--data", "two-class", "--test-data", "two-class/cats"], "overlaps the data folder"),
    (["numerics", "random.tflite", "--reference", "random.tflite", "--data", ""], "data folder must be named"),
    # outputs: never over a user's file or an input, never two outputs at one path
    (["numerics", "random.tflite", "--reference", "notes.txt", "--model-explorer", "notes.txt"],
     "--model-explorer 'notes.txt' is this command's input (--reference)"),
    (["numerics", "random.tflite", "--reference", "notes.txt", "--json", "random.tflite"],
     "is this command's input (INT8.tflite)"),
    (["numerics", "random.tflite", "--reference", "random.tflite", "--json", "a.json", "--model-explorer", "a.json"],
     "--json and --model-explorer name the same file 'a.json'"),
    (["numerics", "random.tflite", "--reference", "random.tflite", "--model-explorer", "m.json",
      "--model-explorer-rounding", "./m.json"], "name the same file"),
    (["numerics", "random.tflite", "--reference", "random.tflite", "--json", "a-file"],
     "'a-file' exists and is not a numerics JSON written by mobilekit"),
    (["numerics", "random.tflite", "--reference", "random.tflite", "--plot", "notes.txt"],
     "is not a numerics plot written by mobilekit"),
    (["numerics", "random.tflite", "--reference", "random.tflite", "--model-explorer", "spec.yaml"],
     "is not Model Explorer node data written by mobilekit"),
    (["bench", "random.tflite", "--json", "notes.txt"], "'notes.txt' exists and is not a bench JSON"),
    (["bench", "random.tflite", "--csv", "random.tflite"], "is this command's input (MODEL)"),
    (["bench", "random.tflite", "--json", "b.out", "--csv", "b.out"], "name the same file"),
    # view: loopback only unless asked, an address that does not resolve
    (["view", "random.tflite", "--host", "0.0.0.0"], "--host '0.0.0.0' can be reached from other machines"),
    (["view", "random.tflite", "--host", "no-such-host.invalid"], "does not resolve"),
    (["nope"], "nope"),
]


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else None) for p in root.rglob("*")}


# A layer name is checked against the model (the converted one for --keep-float and --int16), so those cases build
# one (seconds each): the full run's, not the fast lane's.
def _case(argv: list[str], needle: str):
    builds = "matches no layer" in needle or "block_99" in argv
    return pytest.param(argv, needle, id=" ".join(argv) or "-", marks=[pytest.mark.slow] if builds else [])


@pytest.mark.parametrize("argv,needle", [_case(a, n) for a, n in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli_error, workspace, monkeypatch, argv, needle):
    monkeypatch.chdir(workspace)
    before = tree(workspace)
    line = cli_error(*argv)
    assert needle in line, line
    assert tree(workspace) == before


def test_there_are_at_least_fifty_cases_across_every_command():
    commands = {argv[0] for argv, _ in CASES if argv}
    assert len(CASES) >= 50 and {"build", "info", "bench", "explore", "export", "emulate", "numerics"} <= commands


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Small .tflite files for numerics: an int8 SqueezeNet 1.1 and float files that are and are not its model."""
    import numpy as np

    import mobilekit
    from mobilekit.convert import convert_float, convert_int8

    d = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)

    def model(name, arch="squeezenet1_1", size=32, classes=10, **kw):
        m = mobilekit.create(arch, input_shape=(size, size, 3), classes=classes, **kw)
        (d / f"{name}_float.tflite").write_bytes(convert_float(m))
        return m

    same = model("same")
    (d / "int8.tflite").write_bytes(convert_int8(same, rng.random((4, 32, 32, 3), np.float32)))
    model("bigger", size=48)
    model("five", classes=5)
    model("other", arch="mobilenet_v1", alpha=0.25)
    return d


@pytest.mark.slow  # the module fixture converts five model pairs
@pytest.mark.needs_data
@pytest.mark.xdist_group("numerics_pairs")  # one worker builds the module fixture
@pytest.mark.parametrize("reference,needle", [
    ("int8.tflite", "the reference is not a float model"),
    ("bigger_float.tflite", "the int8 file takes [32, 32, 3] images, the reference [48, 48, 3]"),
    ("five_float.tflite", "a different class count"),
    ("other_float.tflite", "quantised layers have a counterpart in the reference: not the same model"),
])
def test_numerics_refuses_a_reference_that_is_not_the_int8_files_model(cli_error, pairs, monkeypatch, reference,
                                                                         needle):
    monkeypatch.chdir(pairs)
    before = tree(pairs)
    assert needle in cli_error("numerics", "int8.tflite", "--reference", reference, "--images", "4")
    assert tree(pairs) == before


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.xdist_group("numerics_pairs")
def test_numerics_writes_into_missing_folders_and_replaces_only_its_own_files(pairs, monkeypatch):
    """Folders that do not exist yet are made when the outputs are written (not a traceback after the work); a
    second run replaces its own earlier files; the inputs are untouched."""
    from mobilekit import cli

    monkeypatch.chdir(pairs)
    inputs = {p.name: p.read_bytes() for p in pairs.glob("*.tflite")}
    argv = ["numerics", "int8.tflite", "--reference", "same_float.tflite", "--images", "4", "--json", "a/b/n.json",
            "--plot", "c/p.png", "--model-explorer", "d/me.json", "--model-explorer-rounding", "d/r.json"]
    for _ in range(2):
        assert cli.main(argv) == 0
    assert sorted(str(p.relative_to(pairs)) for p in pairs.rglob("*") if p.is_file() and p.suffix != ".tflite") \
        == ["a/b/n.json", "c/p.png", "d/me.json", "d/r.json"]
    assert {p.name: p.read_bytes() for p in pairs.glob("*.tflite")} == inputs


def test_a_locked_sweep_folder_is_refused_naming_the_holder(cli_error, tmp_path, monkeypatch):
    import os

    from mobilekit.files import folder_lock
    from mobilekit.explore.engine import SWEEP_LOCK

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep").mkdir()
    with folder_lock(tmp_path / "sweep", SWEEP_LOCK, "sweep folder"):  # as a running driver holds it
        line = cli_error("explore", "--space", "squeeze_ratio=0.5", "--input-size", "32", "--out", "sweep",
                         "--limit-train", "64", "--limit-test", "32")
    assert f"in use by another run (pid {os.getpid()})" in line
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == [SWEEP_LOCK]


def test_the_lock_dies_with_its_process(tmp_path):
    import subprocess
    import sys

    from mobilekit.files import folder_lock

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom mobilekit.files import folder_lock\n"
                               f"with folder_lock({str(tmp_path)!r}, 'l', 'x'):\n print('held', flush=True)\n"
                               " time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=f"pid {holder.pid}"):
            with folder_lock(tmp_path, "l", "x"):
                pass
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs
        holder.wait()
    with folder_lock(tmp_path, "l", "x") as path:
        assert path.read_text().strip() == str(__import__("os").getpid())


def test_address_auto_without_a_cluster_on_the_machine(cli_error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "no-ray-here"))  # Ray's record of a running cluster: none
    assert "--address auto: no Ray cluster runs on this machine" in cli_error(
        "explore", "--space", "squeeze_ratio=0.5", "--address", "auto")
    (tmp_path / "no-ray-here" / "ray").mkdir(parents=True)
    (tmp_path / "no-ray-here" / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")  # a stale record
    assert "no Ray cluster answers at --address auto (Ray's record names 127.0.0.1:1)" in cli_error(
        "explore", "--space", "squeeze_ratio=0.5", "--address", "auto")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no-ray-here"]
