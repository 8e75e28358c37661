"""ARM emulation: real aarch64 LiteRT kernels under qemu, instruction counts, device predictions,
benchmark_model logs and the adb script. The emulated tests need `mobilekit emulate setup`,
which `scripts/setup.sh --test` runs (CI is root): they fail, never skip, without it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mobilekit
from mobilekit.bench import devices
from mobilekit.bench.benchmark_model import parse, read
from mobilekit.schema import BenchEntry, RunStats
from mobilekit.bench.command import STAT_FIELDS
from mobilekit.convert import convert_float, convert_int8
from mobilekit.emulate import CPUS, count_instructions, status
from mobilekit.emulate.root import _ensure_host_tools
from mobilekit.errors import MobilekitError

pytestmark = pytest.mark.xdist_group("emulate")  # one worker builds the module fixture `small_int8` for all

MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))
LOGS = Path(__file__).parent / "data" / "benchmark_model"
SCRIPT = Path(__file__).parents[1] / "android_demo" / "benchmark" / "run_benchmark_model.sh"
QUICK = ["--num_runs", "3", "--warmup_runs", "1", "--min_secs", "0"]


def cli(*args):
    return subprocess.run([MOBILEKIT, *map(str, args)], capture_output=True, text=True, timeout=1200)


def one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr[-800:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def small_int8(tmp_path_factory):
    d = tmp_path_factory.mktemp("emu")
    model = mobilekit.create("squeezenet1_1", input_shape=(32, 32, 3), classes=10)
    path = d / "squeezenet_int8.tflite"
    path.write_bytes(convert_int8(model, np.random.default_rng(0).random((4, 32, 32, 3), np.float32)))
    return path


# ---- without the emulator -------------------------------------------------------------------

def test_refused_and_unknown_cpus_and_devices_are_one_line_errors(small_int8):
    one_line_error(cli("bench", small_int8, "--emulate", "max"), "'max' is refused", "SME", "cortex-a76")
    one_line_error(cli("bench", small_int8, "--emulate", "cortex-a76,pentium"), "unknown CPU model 'pentium'")
    one_line_error(cli("bench", small_int8, "--device", "pixel-3"), "unknown device 'pixel-3'", "snapdragon-845")
    one_line_error(cli("info", "--arch", "squeezenet", "--device", "iphone"), "unknown device 'iphone'")
    one_line_error(cli("bench", small_int8, "--emulate", "cortex-a76", "--emulate-threads", "9", *QUICK),
                   "emulated thread counts must be 1..8")


def test_missing_root_is_named_with_the_command_that_makes_it(small_int8, tmp_path, cli_run, monkeypatch):
    monkeypatch.setenv("MOBILEKIT_CACHE", str(tmp_path / "empty"))
    r = cli_run("emulate", "status")
    assert r.returncode == 1 and "not set up: run `mobilekit emulate setup`" in r.stdout
    one_line_error(cli_run("bench", small_int8, "--emulate", "cortex-a76"), "mobilekit emulate setup")
    one_line_error(cli_run("build", "--device", "snapdragon-845", "--out", tmp_path / "b"), "mobilekit emulate setup")
    assert not (tmp_path / "b" / "report.json").exists()


def test_setup_without_root_names_the_debian_packages(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda tool: None if tool == "mmdebstrap" else f"/usr/bin/{tool}")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(MobilekitError, match=r"missing mmdebstrap: installing Debian package\(s\) mmdebstrap "
                                             r"needs root; run `sudo apt-get install mmdebstrap`"):
        _ensure_host_tools(print)


def test_device_profiles_and_calibration():
    known = devices.devices()
    for name in ("snapdragon-820", "snapdragon-845", "snapdragon-865", "snapdragon-8-gen-2"):
        assert name in known
    assert any(d.qemu_cpu == "cortex-a53" for d in known.values())  # a low-end A53-class part
    core_types = devices.data()["core_types"]
    for d in known.values():
        assert d.qemu_cpu in CPUS and len(d.cores(d.threads)) == d.threads
        assert all(core in core_types for core, _, _ in d.clusters)
        rel = [core_types[c]["relative_throughput"] * ghz for c, ghz in d.cores(d.threads)]
        assert rel == sorted(rel, reverse=True)  # pinned to the fastest cores
    cal = devices.data()["calibration"]
    assert known[cal["device"]].qemu_cpu == cal["qemu_cpu"] and known[cal["device"]].threads == cal["threads"]
    for kind in ("float", "int8"):  # the one fitted constant per kind reproduces its figures
        assert devices.predict_ms(cal["device"], cal["instructions"][kind], kind) == pytest.approx(
            cal["figures_ms"][kind], rel=1e-9)
    for v in devices.data()["validation"]:  # validation figures are never the calibration ones
        assert v["source"] != cal["source"] and v["device"] != cal["device"]
    # More cores and higher clocks predict less time for the same work.
    n = 100_000_000
    # Without dotprod, int8 instructions cost what float ones do; with it, the fitted int8 constant.
    assert devices.predict_ms("snapdragon-450", n, "int8") == devices.predict_ms("snapdragon-450", n, "float")
    assert devices.predict_ms("snapdragon-845", n, "int8") != devices.predict_ms("snapdragon-845", n, "float")
    assert devices.predict_ms("snapdragon-8-gen-2", n, "int8") < devices.predict_ms("snapdragon-865", n, "int8") \
        < devices.predict_ms("snapdragon-845", n, "int8") < devices.predict_ms("snapdragon-450", n, "int8")


def test_benchmark_model_logs_parse():
    new = read(str(LOGS / "readme_example_4t.log"))
    assert isinstance(new, BenchEntry) and isinstance(new.runs["4"], RunStats)  # the host run's records
    run = new.runs["4"]
    assert new.path == "/data/local/tmp/mobilenet_quant_v1_224.tflite" and new.runtime == "benchmark_model"
    assert (run.runs, run.mean_ms, run.min_ms, run.std_ms) == (50, 20.0921, 19.914, 0.094)
    assert (run.init_ms, run.first_inference_ms, run.warmup_mean_ms) == (2.062, 30.154, 21.1845)
    assert run.rss_increase_kb == round(9.34375 * 1024) and run.use_xnnpack is True
    assert run.median_ms is None and run.p90_ms is None  # not printed: not guessed
    assert set(STAT_FIELDS) <= set(run.to_dict())
    assert BenchEntry.from_dict(new.to_dict()) == new
    old = read(str(LOGS / "older_release_1t.log")).runs["1"]
    assert (old.init_ms, old.first_inference_ms, old.warmup_mean_ms, old.mean_ms) == (48.217, 152.633, 147.833, 145.684)
    assert old.use_xnnpack is None and old.rss_increase_kb is None
    prof = read(str(LOGS / "with_op_profile_2t.log")).runs["2"]
    assert (prof.runs, prof.mean_ms) == (122, 8.1419)  # the profile tables are not stats
    with pytest.raises(MobilekitError, match="no benchmark_model timing lines"):
        parse("STARTING!\nGraph: [x.tflite]\nAborted\n", "crash.log")


def test_logs_and_host_runs_share_one_table_and_schema(small_int8, tmp_path):
    out = tmp_path / "all.json"
    # The README's order: the log, then the model file (the flag takes one LOG; repeat it for more).
    r = cli("bench", "--from-benchmark-model", LOGS / "readme_example_4t.log", small_int8,
            "--from-benchmark-model", LOGS / "older_release_1t.log", "--json", out, *QUICK)
    assert r.returncode == 0, r.stderr[-2000:]
    models = json.loads(out.read_text())["models"]
    assert [m["runtime"] for m in models] == ["litert", "benchmark_model", "benchmark_model"]
    assert models[0]["path"] == str(small_int8)
    assert all(set(STAT_FIELDS) <= set(run) for m in models for run in m["runs"].values())
    table = r.stdout.split("\n\n")[0]  # one table: the host's column, then the logs' with their threads
    assert "mobilenet_quant_v1_224.tflite" in table and "(benchmark_model, 4 thr)" in table
    one_line_error(cli("bench", "--from-benchmark-model", tmp_path / "nope.log"), "no such benchmark_model log")


def test_adb_script_pushes_pins_runs_and_pulls(small_int8, tmp_path):
    """A fake adb (phone with 4 little cores at 1.8 GHz and 4 big at 2.8 GHz) records what the script does."""
    phone, calls = tmp_path / "phone", tmp_path / "calls.txt"
    phone.mkdir()
    fake = tmp_path / "bin" / "adb"
    fake.parent.mkdir()
    fake.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {calls}
case "$1" in
  push) cp "$2" {phone}/$(basename "$3") ;;
  pull) cp {phone}/$(basename "$2") "$3" ;;
  shell)
    case "$2" in
      *cpuinfo_max_freq*) for i in 0 1 2 3; do echo "1800000 $i"; done; for i in 4 5 6 7; do echo "2800000 $i"; done ;;
      getprop*) echo "Pixel 3" ;;
      *benchmark_model\\ --graph*) log=$(echo "$2" | sed 's/.*> \\([^ ]*\\) 2>&1/\\1/');
                                  cp {LOGS / "readme_example_4t.log"} {phone}/$(basename "$log") ;;
    esac ;;
esac
""")
    fake.chmod(0o755)
    (tmp_path / "benchmark_model").write_bytes(b"\x7fELF fake")
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    log = tmp_path / "out.log"
    r = subprocess.run(["bash", SCRIPT, str(small_int8), str(tmp_path / "benchmark_model"), "--threads", "4",
                        "--runs", "30", "--out", str(log)], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=60)
    assert r.returncode == 0, r.stderr
    recorded = calls.read_text()
    assert f"push {small_int8} /data/local/tmp/mobilekit/squeezenet_int8.tflite" in recorded
    assert "pull /data/local/tmp/mobilekit/squeezenet_int8-4t.log" in recorded
    run_line = next(line for line in recorded.splitlines() if "--graph=" in line)
    assert run_line.startswith("shell taskset f0 ")  # cores 4-7, the big ones
    for flag in ("--num_threads=4", "--num_runs=30", "--warmup_runs=1", "--min_secs=1", "--use_xnnpack=true"):
        assert flag in run_line
    assert read(str(log)).runs["4"].runs == 50 and not list(tmp_path.glob("*.partial"))
    bad = subprocess.run(["bash", SCRIPT, "missing.tflite", "x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no such model file: 'missing.tflite'" in bad.stderr


# ---- on the emulator ------------------------------------------------------------------------

@pytest.mark.needs_arm_root
def test_root_is_ready():
    s = status()
    assert s["ready"], s.get("problem")
    r = cli("emulate", "setup")
    assert r.returncode == 0 and "nothing to do" in r.stdout


@pytest.mark.slow  # no training, but tens of seconds: the full lane (CI) runs it
@pytest.mark.needs_arm_root
def test_emulated_int8_is_bit_exact_and_counts_repeat_across_processes(small_int8, tmp_path):
    out = tmp_path / "emu.json"
    r = cli("bench", small_int8, "--emulate", "cortex-a76", "--device", "snapdragon-845", "--json", out, *QUICK)
    assert r.returncode == 0, r.stderr[-2000:]
    arm = json.loads(out.read_text())["models"][0]["arm"]
    e = arm["emulated"]["cortex-a76"]
    assert e["bit_exact"] and e["dotprod"] and set(e["threads"]) == {"1", "4"}
    one = e["threads"]["1"]
    assert one["identical"] and one["instructions"] > 100_000 and one["xnnpack_partitions"] == 1
    assert e["threads"]["4"]["threads_active"] > 1
    assert arm["kind"] == "int8" and arm["devices"]["snapdragon-845"]["predicted_ms"] > 0
    again = count_instructions(small_int8.read_bytes(), "cortex-a76", threads=(1, 4), repeats=2)  # the same job
    # A second process, the same count to within a few instructions of ~500 k: on an AMD EPYC host the CLI's
    # process and pytest's differed by 16, every run (docs/arm-emulation.md); in a process the count repeats.
    assert abs(again["threads"]["1"]["instructions"] - one["instructions"]) <= 1e-4 * one["instructions"]
    assert "bit-exact with the host" in r.stdout and "predicted" in r.stdout


@pytest.mark.slow  # tens of seconds under qemu; the full run (CI) runs the emulator bit-exact above
@pytest.mark.needs_arm_root
@pytest.mark.extended
def test_info_predicts_untrained_float_and_int8():
    r = cli("info", "--arch", "squeezenet1_1", "--input-size", "32", "--classes", "10", "--device",
            "snapdragon-450", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    arm = json.loads(r.stdout)["arm"]
    assert arm["float"]["kind"] == "float" and arm["int8"]["kind"] == "int8"
    f, q = (arm[k]["devices"]["snapdragon-450"] for k in ("float", "int8"))
    assert f["qemu_cpu"] == q["qemu_cpu"] == "cortex-a53" and f["threads"] == 4
    assert arm["int8"]["emulated"]["cortex-a53"]["bit_exact"]
    # Float: x86 and ARM kernels may round a few operations differently (docs/arm-emulation.md).
    for m in arm["float"]["emulated"]["cortex-a53"]["matches_host"].values():
        assert m["bit_exact"] or (m.get("max_ulp_diff", 0) <= 64 and m["max_abs_diff"] < 1e-6), m


@pytest.mark.needs_arm_root
@pytest.mark.slow
@pytest.mark.extended
def test_mobilenet_v1_int8_halves_instructions_with_dotprod_only():
    """The acceptance: MobileNet v1 1.0 224 int8 <= 0.5x float instructions on cortex-a76 (dotprod), not on
    cortex-a53; and the stored int8 calibration count still describes this LiteRT (4 threads, within 3%)."""
    model = mobilekit.create("mobilenet_v1", input_shape=(224, 224, 3), classes=1000)
    files = {"float": convert_float(model),
             "int8": convert_int8(model, np.random.default_rng(0).random((4, 224, 224, 3), np.float32))}
    cal = devices.data()["calibration"]
    counts = {}
    for cpu in ("cortex-a76", "cortex-a53"):
        for kind, content in files.items():
            # int8 on the calibration core also at its thread count (4-thread float would cost ~40 s more).
            threads = (1, cal["threads"]) if (cpu, kind) == (cal["qemu_cpu"], "int8") else (1,)
            e = count_instructions(content, cpu, threads=threads, repeats=1)
            assert e["bit_exact"] or kind == "float", (cpu, kind, e["matches_host"])
            assert all(m["max_abs_diff"] < 1e-6 for m in e["matches_host"].values()), e["matches_host"]
            counts[cpu, kind] = e["threads"]
    ratio = {cpu: counts[cpu, "int8"]["1"]["instructions"] / counts[cpu, "float"]["1"]["instructions"]
             for cpu in ("cortex-a76", "cortex-a53")}
    assert ratio["cortex-a76"] <= 0.5, ratio
    assert ratio["cortex-a53"] > ratio["cortex-a76"] + 0.2, ratio  # no dotprod: int8 gains far less
    measured = counts["cortex-a76", "int8"][str(cal["threads"])]["instructions"]
    assert measured == pytest.approx(cal["instructions"]["int8"], rel=0.03), measured


def test_host_and_guest_outputs_compare_their_finite_values_and_match_their_specials():
    """A detector's unused output rows may hold NaN or infinities: equal ones are no difference (the report's JSON
    stays finite), a NaN against a number is the largest one."""
    from mobilekit.emulate.count import _compare

    same = np.array([1.0, np.nan, np.inf, -np.inf], np.float32)
    assert _compare([same], [same.copy()]) == {"bit_exact": True, "max_abs_diff": 0.0}
    moved = np.array([1.5, np.nan, np.inf, -np.inf], np.float32)
    assert _compare([same], [moved])["max_abs_diff"] == 0.5
    assert _compare([same], [np.array([1.0, 2.0, np.inf, -np.inf], np.float32)])["max_abs_diff"] == float("inf")
    assert _compare([np.zeros(0, np.float32)], [np.zeros(0, np.float32)])["max_abs_diff"] == 0.0
