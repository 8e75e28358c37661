"""The README is executable truth.

Every command in README.md's ``bash`` blocks is classified below: CHEAP ones run as written (in a folder
holding the files they name), SLOW ones (training, emulating big models, sweeps) run each in its own folder (the
sweeps together, in README order) with a small budget appended (argparse keeps a flag's last value, so the
command's own flags are exercised as written): the quickstart's build in the full run, the others in the
extended tier; every SLOW and COVERED one is parsed and resolved in the fast lane. OUTSIDE ones cannot run in a
test (the reason is given). A README command that is not classified fails the suite, and so does a generated
number block that differs from its committed JSON.
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
QUICK_BUILD = ["--limit-train", "600", "--limit-test", "200", "--epochs", "0.3", "--prune-epochs", "0.3",
               "--qat-epochs", "0.1", "--cluster-epochs", "0.1", "--min-stage-steps", "0", "--latency-runs", "5"]
QUICK_EXPLORE = ["--input-size", "32", *QUICK_BUILD, "--recipe", "int8-ptq"]  # as TINY (conftest.py): the sweep's cost
# Transfer builds on the 12-image photos folder: the smallest input, one epoch per phase, no stage minimum.
QUICK_TRANSFER = ["--input-size", "32", "--head-epochs", "1", "--epochs", "1", "--min-stage-steps", "0",
                  "--latency-runs", "5"]
# `--precision auto` on the ImageNet model: a wider budget (at least 81% top-1 agreement, where the int8 file
# agrees on 80.7% of the 150 views) is a real search of a few lifts; the README's 2 points took 82 steps (5.5 min
# in the suite). tests/test_precision.py checks the search on a planted layer, benchmarks/precision.py runs 2.
QUICK_PRECISION = ["--max-agreement-drop", "19", "--latency-runs", "5"]

CHEAP = {
    "mobilekit info --arch mobilenet_v1 --alpha 0.5 --input-size 160",
    "mobilekit info --arch squeezenet1_0 --json",
    "mobilekit bench build/squeezenet1_1/squeezenet1_1.tflite --num_threads 1,2 --json bench.json",
    "mobilekit bench a.tflite b.tflite --sram-kb 8192 --fps 15 --energy-mj 2000 --profile",
    "mobilekit bench --from-benchmark-model phone.log model.tflite",
    "mobilekit archs",
    "mobilekit env",
    "mobilekit numerics build/squeezenet1_1/squeezenet1_1.tflite --reference build/squeezenet1_1/squeezenet1_1_float.tflite",
    "mobilekit numerics build/squeezenet1_1/squeezenet1_1.tflite --reference build/squeezenet1_1/squeezenet1_1_float.tflite "
    "--model-explorer sqnr.json",
    "mobilekit export tflite --arch shufflenet_v2 --scale 0.5 --out exports/",
    "mobilekit info build/squeezenet1_1/squeezenet1_1.tflite",
}
CHEAP_ARM = {  # need the aarch64 root (`mobilekit emulate setup`, done by scripts/setup.sh --test)
    "mobilekit emulate setup",
    "mobilekit bench model.tflite --emulate cortex-a76,cortex-a53",
    "mobilekit bench model.tflite --device snapdragon-845,snapdragon-450",
}
SLOW = {  # command -> why it is slow (what the appended budget cuts)
    "mobilekit build --arch squeezenet": "trains on 60,000 images (about 2-3 min)",
    "mobilekit build --arch squeezenet1_0 --data photos/ --input-size 96 --epochs 10 --out build/photos":
        "trains 10 epochs",
    "mobilekit build --sparsity 0 --no-qat": "trains on 60,000 images",
    "mobilekit build --limit-train 2000 --limit-test 500 --input-size 32 --epochs 4": "trains 4 epochs",
    "mobilekit build --arch efficientnet_lite0 --weights imagenet --data photos/ --input-size 128":
        "fine-tunes a pretrained backbone",
    "mobilekit build --arch mobilenet_v2 --weights imagenet --data photos/ --test-data held-out/ --fine-tune block_12 "
    "--recipe int8-qat": "fine-tunes a pretrained backbone",
    "mobilekit build --recipe cluster-int8 --clusters 8": "trains on 60,000 images",
    "mobilekit build --recipe int8-ptq --calibration mse --bias-correction": "trains on 60,000 images",
    "mobilekit build --recipe int8-ptq --rewrites pad-fold,normalization-fold,space-to-depth-stem":
        "trains on 60,000 images",
    "mobilekit build --arch squeezenet1_0 --recipe deep-compression --size-only": "k-means on 1.2 M weights",
    "mobilekit build --arch squeezenet1_1 --teacher squeezenet1_0": "trains a teacher and two students",
    "mobilekit bench --compare onnxruntime --arch squeezenet1_1": "converts and times four 224x224 models",
    "mobilekit explore --arch squeezenet1_1 --space squeeze_ratio=0.25,0.5 --space pct3x3=0.25,0.5":
        "trains 4 design points",
    "mobilekit explore --search oneatatime --seeds 2 --space squeeze_ratio=0.125,0.25,0.5,1.0":
        "trains 8 design points",
    "mobilekit explore --spec sweep.yaml --device snapdragon-450 --fps 30 --max-size-kb 100":
        "screens on emulated ARM, trains the survivors",
    "mobilekit explore --report build/explore": "needs the sweeps above",
    "mobilekit build --arch mobilenet_v2 --weights imagenet --precision auto --max-agreement-drop 2":
        "ports, converts and searches a 224x224 ImageNet model (82 candidates)",
    "mobilekit build --keep-float fire9_expand3x3_relu --int16 'fire8_*'": "trains on 60,000 images",
    "mobilekit build --io float32": "trains on 60,000 images",
    "mobilekit build --arch squeezenet --workers 2": "trains on 60,000 images on two Ray Train workers",
}
# The SLOW commands the full run (CI) builds: the quickstart's, and the one build the full run trains on Ray Train
# workers. The others run in the extended tier (`pytest -m extended`); the fast lane parses and resolves them all.
FULL_RUN_SLOW = {"mobilekit build --arch squeezenet", "mobilekit build --arch squeezenet --workers 2"}
# SLOW commands whose path a dedicated end-to-end test runs (the file and test named: the same flags, with another
# arch, group count, input size or budget where that is cheaper): the suite parses and resolves them as written (flags,
# bounds, recipe, mode defaults: what a renamed or refused flag would break) and checks the named test exists, rather
# than running a second build of the same kind (about 330 s of the full run).
COVERED = {
    "mobilekit build --arch squeezenet --device snapdragon-865":
        "test_build_e2e.py::test_build_with_architecture_knobs",
    "mobilekit build --arch shufflenet_v1 --groups 3 --scale 0.5":  # groups 2 there; test_archs.py builds every g
        "test_build_e2e.py::test_build_with_architecture_knobs",
    "mobilekit build --max-accuracy-drop 0.5 --strict-budget":
        "test_budget.py::test_a_build_judges_its_budget_on_the_validation_split_it_never_trained_on",
    "mobilekit build --arch mobilenet_v2 --weights imagenet":
        "test_pretrained_build.py::test_int8_file_is_full_integer_224_and_one_partition",
    "mobilekit build --arch squeezenet1_1 --data photos/ --input-size 96 --epochs 20 --teacher mobilenet_v2:imagenet":
        "test_transfer_build.py::test_small_data_squeezenet_keeps_its_float_accuracy_and_learns_from_a_pretrained_teacher",
    "mobilekit build --arch squeezenet1_0 --recipe deep-compression":
        "test_build_e2e.py::test_deep_compression_recipe_survives_into_the_file",
    "mobilekit info --arch mobilenet_v2 --device snapdragon-8-gen-2":
        "test_emulate.py::test_info_predicts_untrained_float_and_int8",
}
OUTSIDE = {
    "bash scripts/setup.sh && .venv/bin/mobilekit build --arch squeezenet":
        "the set-up is what CI runs first; its build is `mobilekit build --arch squeezenet` in SLOW",
    "bash scripts/setup.sh --test && .venv/bin/python -m pytest -v --durations=15": "CI's own command (.ci/run)",
    "mobilekit explore --spec sweep.yaml --address HEAD_IP:6379 --out sweeps/s1":
        "needs a Ray cluster; tests/test_explore_cluster.py runs a sweep through --address on a three-node cluster",
    "mobilekit build --workers 8 --address HEAD_IP:6379 --max-failures 2":
        "needs a Ray cluster; tests/test_data_parallel.py builds through --address on a multi-node cluster",
    "mobilekit export android build/squeezenet1_1":
        "writes into this checkout's demo app; tests/test_android_demo.py runs it with --to",
    "mobilekit view build/squeezenet1_1":
        "a server that runs until Ctrl+C; tests/test_model_explorer.py serves it and opens it in Chromium",
}
SWEEP_YAML = """base: {arch: squeezenet1_1}
arch: [squeezenet1_1, mobilenet_v1]
space: {alpha: [0.25], sparsity: [0.5]}
"""


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            command = re.split(r"\s{2,}#", line)[0].strip()
            if command:
                commands.append(command)
    return list(dict.fromkeys(commands))


def test_every_readme_command_is_classified():
    classified = CHEAP | CHEAP_ARM | set(SLOW) | set(COVERED) | set(OUTSIDE)
    commands = readme_commands()
    assert len(commands) >= 30
    assert [c for c in commands if c not in classified] == []
    assert [c for c in classified if c not in commands] == []  # the lists follow the README
    assert FULL_RUN_SLOW <= set(SLOW)
    assert not set(COVERED) & set(SLOW)


@pytest.mark.parametrize("command", sorted(COVERED) + sorted(SLOW))
def test_slow_and_covered_readme_commands_resolve(command):
    """A command the fast lane does not run parses and resolves as written (what a renamed or refused flag would
    break); for a COVERED one, the test that runs its build is there."""
    from mobilekit import cli
    from mobilekit.cli.flags import settings_of
    from mobilekit.pipeline import BuildConfig

    args = cli.build_parser().parse_args(shlex.split(command)[1:])
    if args.command == "build":
        BuildConfig(**settings_of(args))  # the schema's rules, the recipe, the mode defaults, the teacher's name
    if command in COVERED:
        path, name = COVERED[command].split("::")
        assert re.search(rf"^def {name}\(", (ROOT / "tests" / path).read_text(), re.M), COVERED[command]


def test_readme_and_docs_numbers_match_the_committed_json():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import docs
    finally:
        sys.path.pop(0)
    assert docs.check() == [], "run `python benchmarks/docs.py` after committing new results"
    blocks = {m.group(2) for f in docs.FILES for m in docs.BLOCK.finditer(f.read_text())}
    assert blocks == set(docs.RENDERERS)  # every renderer is used, every block has a renderer


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the files the README's commands name: small .tflite files, a phone log, a build."""
    import mobilekit
    from mobilekit.convert import convert_float, convert_int8

    d = tmp_path_factory.mktemp("readme")
    rng = np.random.default_rng(0)
    for name, arch in (("model.tflite", "squeezenet1_1"), ("a.tflite", "squeezenet1_1"), ("b.tflite", "mobilenet_v1")):
        kw = {"alpha": 0.25} if arch == "mobilenet_v1" else {}
        model = mobilekit.create(arch, input_shape=(32, 32, 3), classes=10, **kw)
        (d / name).write_bytes(convert_int8(model, rng.random((8, 32, 32, 3), np.float32)))
        if name == "model.tflite":
            squeezenet = model
    (d / "build" / "squeezenet1_1").mkdir(parents=True)
    shutil.copy(d / "model.tflite", d / "build" / "squeezenet1_1" / "squeezenet1_1.tflite")
    (d / "build" / "squeezenet1_1" / "squeezenet1_1_float.tflite").write_bytes(convert_float(squeezenet))
    shutil.copy(ROOT / "tests" / "data" / "benchmark_model" / "readme_example_4t.log", d / "phone.log")
    return d


def run(command: str, cwd: Path, extra=(), timeout=1200) -> subprocess.CompletedProcess:
    argv = shlex.split(command)  # as a shell reads it (quoted globs)
    argv[0] = MOBILEKIT
    result = subprocess.run([*argv, *extra], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (command, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, (command, result.stderr[-3000:])
    return result


# A second or more each (a fresh interpreter, the workdir's models converted): the full run's, not the fast lane's.
@pytest.mark.slow
@pytest.mark.parametrize("command", [pytest.param(c, marks=[*([pytest.mark.needs_data] if "numerics" in c else []),
                                                             pytest.mark.xdist_group("readme_workdir")],  # one fixture
                                                  id=c) for c in sorted(CHEAP)])
def test_cheap_readme_command_runs_as_written(workdir, command):
    result = run(command, workdir)
    if "--model-explorer sqnr.json" in command:
        assert json.loads((workdir / "sqnr.json").read_text())["results"]
        assert not list(workdir.glob("sqnr.*.json"))  # no file the command was not asked to write
    if "--json bench.json" in command:
        assert json.loads((workdir / "bench.json").read_text())["models"][0]["runs"].keys() == {"1", "2"}
    if "--profile" in command:
        assert "time by op type" in result.stdout
    if "--from-benchmark-model" in command:
        assert "benchmark_model" in result.stdout and "model.tflite" in result.stdout
    if command.startswith("mobilekit export tflite"):
        files = sorted(p.name for p in (workdir / "exports").iterdir())
        assert files == ["export.json", "shufflenet_v2_float.tflite", "shufflenet_v2_int8.tflite"]
    if command.startswith("mobilekit numerics"):
        assert "fire9_concat" in result.stdout and "top-1" in result.stdout
    if command.startswith("mobilekit info build/"):  # the workdir's file: the converter's, int8 in and out
        assert "int8 in, int8 out" in result.stdout and "no: input int8" in result.stdout


@pytest.mark.slow  # tens of seconds under qemu: tests/test_emulate.py runs the emulator in the full run
@pytest.mark.extended
@pytest.mark.needs_arm_root
@pytest.mark.xdist_group("readme_workdir")
@pytest.mark.parametrize("command", sorted(CHEAP_ARM))
def test_cheap_arm_readme_command_runs_as_written(workdir, command):
    result = run(command, workdir)
    if "--device" in command:
        assert "snapdragon-450" in result.stdout and "predicted" in result.stdout


def _image_folder(root: Path):
    from mobilekit.backend import tf

    for k, c in enumerate(("cats", "dogs")):
        (root / c).mkdir(parents=True)
        for i in range(6):
            (root / c / f"{i}.png").write_bytes(tf.io.encode_png(np.full((20, 20, 3), 30 * i + 100 * k,
                                                                       np.uint8)).numpy())


def _accuracy_budget(command: str) -> list[str]:
    """A build with an accuracy budget gets a budget it meets at once (100 points): the recipe's stages once, as
    written; the budget's search is tests/test_budget.py's."""
    from mobilekit import cli
    from mobilekit.cli.flags import settings_of
    from mobilekit.pipeline import BuildConfig

    args = cli.build_parser().parse_args(shlex.split(command)[1:])
    return ["--max-accuracy-drop", "100"] if BuildConfig(**settings_of(args)).max_accuracy_drop is not None else []


def _budget(command: str) -> list[str]:
    """The flags appended to a SLOW command (argparse keeps a flag's last value)."""
    if command.startswith("mobilekit build") and "--data" in command and ("--weights" in command
                                                                          or "--teacher" in command):
        return QUICK_TRANSFER + _accuracy_budget(command)
    # A `--workers` build is about the workers, not the recipe: one fit on them (tests/test_data_parallel.py, in the
    # extended tier, prunes and runs QAT on workers too).
    if "--workers" in command:
        return QUICK_BUILD + ["--recipe", "int8-ptq"]
    if command.startswith("mobilekit build") and "--weights" not in command and "--size-only" not in command:
        return (QUICK_BUILD if "--data" not in command else ["--min-stage-steps", "0", "--latency-runs", "5"]) \
            + _accuracy_budget(command)
    if command.startswith("mobilekit explore") and "--report" not in command:
        return QUICK_EXPLORE
    if "--precision auto" in command:
        return QUICK_PRECISION
    return []


def _slow_folder(d: Path) -> Path:
    """What the SLOW commands name: two small image folders and the sweep spec."""
    _image_folder(d / "photos")
    _image_folder(d / "held-out")
    (d / "sweep.yaml").write_text(SWEEP_YAML)
    return d


SWEEPS = [c for c in SLOW if c.startswith("mobilekit explore")]  # share one folder: `--report` reads them


def _slow_param(command: str):
    """A SLOW command as a test case: extended unless the full run builds it; one that starts Ray (`--workers`) runs on
    the Ray tests' worker, one Ray user at a time (outside that group it took 134 s in the suite against 49 s alone)."""
    marks = [pytest.mark.xdist_group("ray")] if "--workers" in command else []
    if command not in FULL_RUN_SLOW:
        marks.append(pytest.mark.extended)
    return pytest.param(command, id=command, marks=marks)


# Each command in its own folder, so the test workers (pytest-xdist) run them side by side.
@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.needs_arm_root
@pytest.mark.parametrize("command", [_slow_param(c) for c in SLOW if c not in SWEEPS])
def test_slow_readme_command_runs_with_a_small_budget(tmp_path, command):
    d = _slow_folder(tmp_path)
    run(command, d, _budget(command))
    if command == "mobilekit build --arch squeezenet":
        assert json.loads((d / "build" / "squeezenet1_1" / "report.json").read_text())["arch"] == "squeezenet1_1"
    if "--workers 2" in command:
        distributed = json.loads((d / "build" / "squeezenet1_1" / "report.json").read_text())["distributed"]
        assert distributed["workers"] == 2 and distributed["replicas_identical"]
        assert all(len(set(f["weights_sha256"])) == 1 for f in distributed["fits"])  # every replica, every fit
    if "--out build/photos" in command:
        assert (d / "build" / "photos" / "report.json").is_file()
    if "efficientnet_lite0" in command:
        transfer = json.loads((d / "build" / "efficientnet_lite0" / "report.json").read_text())
        assert [p["phase"] for p in transfer["transfer"]["phases"]] == ["head", "fine_tune"]
    if "--precision auto" in command:
        precision = json.loads((d / "build" / "mobilenet_v2" / "report.json").read_text())["precision"]
        assert precision["mode"] == "auto" and precision["budget"] == {"max_agreement_drop_points": 19.0}
        assert precision["chosen"]["top1_agreement"] >= 0.81 and precision["search_images"] == 150


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.needs_data
@pytest.mark.needs_arm_root
@pytest.mark.xdist_group("ray")  # one Ray instance at a time on the machine
def test_readme_sweeps_run_with_a_small_budget(tmp_path, acceptance):
    """The 2x2 grid is the acceptance sweep of tests/test_explore.py (same flags, same budget): run as written into
    that finished folder it trains nothing and rewrites the same table. The other sweeps run here, one seed."""
    from conftest import ACCEPTANCE, TINY

    d = _slow_folder(tmp_path)
    sweep, _, _ = acceptance
    before = json.loads((sweep / "results.json").read_text())["rows"]
    for command in [c for c in readme_commands() if c in SWEEPS]:  # README order: `--report` follows the sweeps
        if command.split()[2:] == ACCEPTANCE[:len(ACCEPTANCE) - len(TINY)]:
            result = run(command, d, [*TINY, "--out", str(sweep)])
            assert "4 point(s), 4 already finished" in result.stdout + result.stderr
        else:
            run(command, d, [*_budget(command), "--seeds", "1"] if "--seeds" in command else _budget(command))
    assert json.loads((sweep / "results.json").read_text())["rows"] == before
    assert (d / "build" / "explore" / "explore.md").is_file()


@pytest.mark.slow
@pytest.mark.needs_data
def test_readme_python_api_block_runs(tmp_path, monkeypatch):
    block, = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    quick = block.replace('epochs=1, out="build/try"', 'epochs=1, out="build/try", limit_train=600, limit_test=200, '
                                                       'prune_epochs=0.3, qat_epochs=0.1, min_stage_steps=0, '
                                                       'latency_runs=5')
    assert quick != block, "the README's Python block changed: update the budget substitution"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(quick, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["report"]["arch"] == "squeezenet1_1"
    assert (tmp_path / "build" / "try" / "squeezenet1_1.tflite").is_file()


def _layout_block() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## Layout\n\n```\n", 1)[1].split("```", 1)[0]


def test_readme_layout_matches_the_tree():
    """Every path the README's layout names exists, and every module and package of mobilekit/ is named."""
    named = set()
    for line in _layout_block().splitlines():
        head = line.split()[0] if line[:1].strip() else ""
        if head:
            assert (ROOT / head).exists(), f"README layout names {head}, which is not in the tree"
            named.add(head.rstrip("/"))
        named.update(f"mobilekit/{m}" for m in re.findall(r"\b(\w+\.py)\b", line) if (ROOT / "mobilekit" / m).exists())
    package = ROOT / "mobilekit"
    tree = {f"mobilekit/{p.name}" for p in package.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert sorted(tree - named) == []
