"""The `mobilekit` command: fast help, and one-line exit-2 errors for bad input."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

MOBILEKIT = [str(Path(sys.executable).with_name("mobilekit"))]


def run(*args, cwd=None):
    return subprocess.run(MOBILEKIT + list(args), capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_contains(line: str, *needles):
    for needle in needles:
        assert needle in line, (needle, line)


def assert_usage_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_help_is_fast_and_lists_commands():
    t0 = time.perf_counter()
    result = run("--help")
    elapsed = time.perf_counter() - t0
    assert result.returncode == 0
    assert "build" in result.stdout and "env" in result.stdout
    assert elapsed < 2.0, f"--help took {elapsed:.2f}s (TensorFlow imported eagerly?)"
    assert "tensorflow" not in subprocess.run(
        [sys.executable, "-c", "import sys, mobilekit.cli; mobilekit.cli.build_parser(); print(sorted(sys.modules))"],
        capture_output=True, text=True).stdout


def test_build_help_documents_stage_flags():
    out = run("build", "--help").stdout
    for flag in ("--epochs", "--qat-epochs", "--sparsity", "--no-qat", "--seed", "--out", "--data",
                 "--input-size"):
        assert flag in out


def test_env_prints_versions():
    result = run("env")
    assert result.returncode == 0
    assert "tensorflow" in result.stdout and "2.21.0" in result.stdout
    assert "ai-edge-litert" in result.stdout and "2.3.0" in result.stdout


def test_unknown_arch_lists_valid_ones(cli_error, tmp_path):
    assert_contains(cli_error("build", "--arch", "resnet50", "--out", str(tmp_path)),
                       "'resnet50'", "squeezenet1_1")


@pytest.mark.parametrize("flag, value, needle", [
    ("--epochs", "-1", "epochs=-1.0"), ("--qat-epochs", "-0.5", "qat_epochs=-0.5"), ("--prune-epochs", "nan", "'nan'"),
    ("--sparsity", "1", "sparsity=1.0"), ("--sparsity", "-0.1", "sparsity=-0.1"), ("--sparsity", "half", "'half'"),
    ("--input-size", "0", "input_size=0"), ("--batch-size", "-4", "batch_size=-4"), ("--lr", "0", "lr=0.0"),
])
def test_bad_numbers(cli_error, tmp_path, flag, value, needle):
    assert_contains(cli_error("build", flag, value, "--out", str(tmp_path)), flag, needle)


def test_missing_data_dir(cli_error, tmp_path):
    assert_contains(cli_error("build", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)),
                       "data folder not found", "nope")


def test_unwritable_out_dir(cli_error, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_contains(cli_error("build", "--out", str(blocker / "out")), "not writable", "a-file")
    assert_contains(cli_error("build", "--out", "/proc/mobilekit-out"), "not writable", "/proc/mobilekit-out")


def test_one_class_data_dir_fails_cleanly(cli_error, tmp_path):
    from mobilekit.backend import tf

    (tmp_path / "data" / "cats").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "data" / "cats" / f"{i}.png").write_bytes(
            tf.io.encode_png(np.zeros((8, 8, 1), np.uint8)).numpy())
    out = tmp_path / "out"
    assert_contains(cli_error("build", "--data", str(tmp_path / "data"), "--out", str(out)),
                       "only one class", "cats")
    assert not any(out.glob("*.tflite"))


def test_no_command_prints_help():
    result = run()
    assert result.returncode == 2 and "usage" in result.stdout


def test_unreadable_image_fails_cleanly(tmp_path, cli_run):
    from mobilekit.backend import tf

    png = tf.io.encode_png(np.zeros((8, 8, 1), np.uint8)).numpy()
    for cls in ("cats", "dogs"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "data" / cls / f"{i}.png").write_bytes(png)
    (tmp_path / "data" / "dogs" / "9.jpg").write_bytes(b"\xff\xd8\xff truncated jpeg")
    out = tmp_path / "out"
    result = cli_run("build", "--data", tmp_path / "data", "--out", out)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mobilekit build: error: unreadable image") and "9.jpg" in last
    assert not out.exists()  # a failed build creates nothing, not even an empty --out


@pytest.mark.parametrize("args, needles", [
    (["--arch", "squeezenet", "--weights", "imagenet"], ["no offline 'imagenet' weights for squeezenet1_1",
                                                          "--arch mobilenet_v2"]),
    (["--arch", "mobilenet_v2", "--weights", "imagenet", "--epochs", "3"], ["epochs=3.0", "does not apply"]),
    (["--arch", "mobilenet_v2", "--weights", "imagenet", "--alpha", "0.5"], ["alpha=0.5 does not apply", "built as its checkpoint was (alpha=1.0)"]),
    (["--arch", "mobilenet_v2", "--weights", "resnet"], ["--weights", "'resnet'"]),
])
def test_pretrained_build_rejects_what_it_cannot_honour(cli_error, tmp_path, args, needles):
    out = tmp_path / "out"
    assert_contains(cli_error("build", *args, "--out", str(out)), *needles)
    assert not out.exists()


def test_arch_flags_come_from_the_builders_signatures(cli_run):
    from mobilekit import archs

    out = cli_run("build", "--help").stdout
    knobs = set(archs.knob_types()) - {"batch_norm", "classifier_relu"}
    assert {"squeeze_ratio", "pct3x3", "bypass", "base_e", "alpha", "groups", "scale"} <= knobs
    for name in knobs:
        assert f"--{name.replace('_', '-')}" in out, name
    assert archs.knob_types("squeezenet1_1")["base_e"] is int and archs.knob_types("mobilenet_v1")["alpha"] is float
    result = cli_run("info", "--arch", "squeezenet1_1", "--base-e", "64", "--input-size", "64", "--classes", "10",
                     "--json")
    assert result.returncode == 0 and '"base_e": 64' in result.stdout


def test_preflight_names_a_missing_teacher_file_and_writes_nothing_for_bad_settings(cli_error, tmp_path):
    assert_contains(cli_error("build", "--teacher", str(tmp_path / "teacher.h5"), "--out", str(tmp_path / "a")),
                    "--teacher model file not found", "teacher.h5")
    assert_contains(cli_error("build", "--teacher", "resnet50", "--out", str(tmp_path / "b")),
                    "unknown arch 'resnet50'")
    assert_contains(cli_error("build", "--sparsity", "0.5", "--prune-epochs", "0", "--out", str(tmp_path / "c")),
                       "needs prune_epochs > 0")
    assert not any((tmp_path / d).exists() for d in "abc")  # settings are checked before the folder is made


@pytest.mark.slow  # a fresh interpreter per command
def test_commands_print_no_tensorflow_log_noise():
    import os

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    result = subprocess.run(MOBILEKIT + ["info", "--arch", "squeezenet1_1", "--input-size", "32", "--classes", "10",
                                         "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0 and '"params"' in result.stdout
    assert result.stderr.strip() == "", result.stderr  # no cuInit / oneDNN / absl lines
