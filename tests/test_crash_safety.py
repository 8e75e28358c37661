"""A build killed with SIGKILL mid-training leaves nothing behind and never damages the previous complete
build in the same --out; TensorFlow's autograph temp files of the killed process are swept by the next run."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
BASE = ["--arch", "squeezenet1_1", "--input-size", "32", "--limit-train", "2000", "--limit-test", "500",
        "--epochs", "0.3", "--latency-runs", "10", "--min-stage-steps", "0"]
TINY = [*BASE, "--prune-epochs", "0.3", "--qat-epochs", "0.1", "--sparsity", "0.5"]  # the killed build prunes
# The previous complete build: any build will do, so the cheapest (float training and post-training quantization).
PREVIOUS = [*BASE, "--recipe", "int8-ptq"]

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_sigkill_mid_training_keeps_the_previous_build_and_leaves_nothing(tmp_path):
    out = tmp_path / "build"
    first = subprocess.run([MOBILEKIT, "build", *PREVIOUS, "--out", str(out)], capture_output=True, text=True,
                           timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    before = snapshot(out)
    assert set(before) == {"squeezenet1_1.tflite", "squeezenet1_1_float.tflite", "labels.txt", "report.json",
                           "report.md", "confusion.png"}

    proc = subprocess.Popen([MOBILEKIT, "build", *TINY, "--seed", "1", "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seen = ""
    deadline = time.monotonic() + 600
    while "Pruning" not in seen and time.monotonic() < deadline:  # float training is done, pruning runs
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
    assert "Pruning" in seen, seen[-2000:]
    time.sleep(2)
    temp_root = Path(tempfile.gettempdir()) / f"mobilekit-{os.getuid()}"
    killed_temp = list(temp_root.glob(f"{proc.pid}-*"))
    assert killed_temp and list(killed_temp[0].glob("__autograph_generated_file*.py")), \
        "the build traced functions: autograph files are in its private temp folder"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    assert snapshot(out) == before  # the previous complete build, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]  # no staging folder, nothing else
    # The next mobilekit process sweeps the killed one's temp folder (autograph files included).
    subprocess.run([sys.executable, "-c", "import mobilekit.backend"], check=True, timeout=120)
    assert not killed_temp[0].exists()
