"""`mobilekit explore`: the space, the Pareto front, saturation, bad specs, and real sweeps on Ray.

The slow tests run real sweeps (Fashion-MNIST, tiny budgets) on an embedded Ray and on a Ray head
started on the loopback address, kill a sweep with SIGKILL and resume it, and compare each point's
.tflite with `mobilekit build` of the same config byte for byte.
"""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mobilekit import cli
from mobilekit.errors import MobilekitError
from mobilekit.explore import results
from mobilekit.explore.space import ExploreConfig, arch_list, parse_objectives, parse_space_arg, plan, point_count

from conftest import MOBILEKIT, TINY, sha256_file as _sha  # tests/ is on sys.path (pytest's rootdir insertion)
from conftest import explore as _explore


pytestmark = [pytest.mark.needs_data, pytest.mark.xdist_group("ray")]  # one Ray instance at a time


# ---- the space, parsing and the table (no Ray, no training) ----

def test_ray_tests_share_one_test_worker(request):
    """Two sweeps at once on a 2-core machine would fight over it: every test of this file runs on one worker."""
    if getattr(request.config.option, "loadgroup", False):  # a pytest-xdist worker with --dist loadgroup
        assert request.node.nodeid.endswith("@ray"), "xdist_group ignored: check the pytest / pytest-xdist pins"


def test_space_and_objective_parsing():
    assert parse_space_arg("squeeze-ratio=0.25, 0.5") == ("squeeze_ratio", ["0.25", "0.5"])
    for bad in ("squeeze_ratio", "=1,2", "pct3x3=", "pct3x3=0.5,,1"):
        with pytest.raises(MobilekitError):
            parse_space_arg(bad)
    assert parse_objectives("accuracy_int8:max,latency_device_ms:min") == (("accuracy_int8", "max"),
                                                                          ("latency_device_ms", "min"))
    for bad in ("accuracy:max", "size_gzip_bytes", "size_gzip_bytes:up", "params:min,params:max"):
        with pytest.raises(MobilekitError):
            parse_objectives(bad)


def _brute_front(rows, objectives):
    """Non-dominated by definition: no other row is >= on every objective and > on one."""
    def as_good(a, b):
        return all((a[c] >= b[c]) if m == "max" else (a[c] <= b[c]) for c, m in objectives)

    def strictly(a, b):
        return any((a[c] > b[c]) if m == "max" else (a[c] < b[c]) for c, m in objectives)

    ok = [r for r in rows if r["status"] == "ok"]
    return {r["point"] for r in ok if not any(as_good(o, r) and strictly(o, r) for o in ok if o is not r)}


def test_pareto_front_equals_brute_force_on_random_tables():
    rng = random.Random(0)
    objectives = (("accuracy_int8", "max"), ("size_gzip_bytes", "min"), ("latency_host_ms", "min"))
    for trial in range(200):
        rows = [{"point": f"p{i}", "status": rng.choice(["ok", "ok", "ok", "failed"]),
                 "accuracy_int8": rng.choice([0.5, 0.6, 0.7, 0.8]), "size_gzip_bytes": rng.choice([10, 20, 30]),
                 "latency_host_ms": rng.choice([1.0, 2.0])} for i in range(rng.randint(1, 12))]
        assert results.pareto_ids(rows, objectives) == _brute_front(rows, objectives), rows
    # Duplicates of one design are both on the front (neither dominates the other).
    same = [{"point": p, "status": "ok", "accuracy_int8": 0.9, "size_gzip_bytes": 5} for p in ("a", "b")]
    assert results.pareto_ids(same, objectives[:2]) == {"a", "b"}


def test_points_over_their_accuracy_budget_are_marked_and_kept_off_the_front_and_the_recommendation(tmp_path):
    """A point whose build missed its accuracy budget (report.json's budget.met false) is marked in the table and
    explore.md, and a front compares the others (at the same accuracy cost); points without a budget are as before."""
    from mobilekit.explore import render
    from mobilekit.explore.trial import budget_fields

    assert budget_fields(None) == {}
    assert budget_fields({"met": False, "chosen": {"drop_points": 2.5}}) == {"accuracy_drop": 2.5,
                                                                            "within_budget": False}
    rows = [{"point": "over", "status": "ok", "accuracy_int8": 0.95, "size_gzip_bytes": 10, "within_budget": False,
             "accuracy_drop": 3.0},
            {"point": "held", "status": "ok", "accuracy_int8": 0.90, "size_gzip_bytes": 20, "within_budget": True,
             "accuracy_drop": 0.4},
            {"point": "none", "status": "ok", "accuracy_int8": 0.80, "size_gzip_bytes": 15}]
    objectives = (("accuracy_int8", "max"), ("size_gzip_bytes", "min"))
    assert results.pareto_ids(rows, objectives) == {"held", "none"}  # "over" would dominate both
    assert results.recommended([{**r, "meets_targets": True} for r in rows])["point"] == "held"
    sweep = {"objectives": objectives, "targets": {}, "space": {"arch": ["squeezenet1_1"]}, "search": "grid",
             "archs": ["squeezenet1_1"], "seeds": 1}
    flat = results.table([{**r, "knobs": {"arch": "squeezenet1_1"}, "seed": 0} for r in rows], sweep)
    assert {f["point"]: (f["within_budget"], f["pareto"]) for f in flat} == {
        "over": (False, False), "held": (True, True), "none": (None, True)}
    doc = {"sweep": sweep, "counts": {"ok": 3, "failed": 0, "screened_out": 0}, "screened_out": {},
           "recommended": "held", "saturation": {}, "rows": [{**f, "latency_host_ms": None, "latency_device_ms": None,
                                                              "energy_mj": None, "params": None, "macs": None,
                                                              "tflite": "x"} for f in flat]}
    text = render.markdown(doc, [])
    assert "**1 point(s) over their accuracy budget**" in text and "| over budget |" in text


def _row(value, seed, acc, other=0.5):
    return {"point": f"{value}-{other}-{seed}", "status": "ok", "seed": seed, "accuracy_int8": acc,
            "knobs": {"arch": "squeezenet1_1", "squeeze_ratio": value, "pct3x3": other}}


def test_saturation_is_the_smallest_value_within_the_seeds_noise_of_the_best():
    base = {"squeezenet1_1": {"squeeze_ratio": 0.5, "pct3x3": 0.5}}
    rows = [_row(0.125, 0, 0.70), _row(0.125, 1, 0.72), _row(0.25, 0, 0.80), _row(0.25, 1, 0.82),
            _row(0.5, 0, 0.83), _row(0.5, 1, 0.81), _row(1.0, 0, 0.84), _row(1.0, 1, 0.82),
            _row(0.25, 0, 0.10, other=0.99)]  # off the base axis: ignored
    s = results.saturation(rows, "squeeze_ratio", base)
    assert s["on_axis"] and s["seeds"] == 2 and [c["value"] for c in s["curve"]] == [0.125, 0.25, 0.5, 1.0]
    assert s["noise_std"] == pytest.approx(2 ** 0.5 / 100)  # every pair differs by 0.02
    assert s["margin"] == pytest.approx(2 * s["noise_std"])
    assert s["saturation_value"] == 0.25  # 0.81 is within 0.028 of the best mean 0.83; 0.71 is not
    one_seed = [r for r in rows if r["seed"] == 0]
    assert results.saturation(one_seed, "squeeze_ratio", base)["saturation_value"] == 1.0  # no noise: the best
    sizes = [{"status": "ok", "seed": 0, "accuracy_int8": a, "knobs": {"arch": "squeezedet", "input_size": v}}
             for v, a in (([96, 160], 0.2), (96, 0.1), (128, 0.3))]  # a pair reads back from JSON as a list
    assert results.saturation(sizes, "input_size", {"squeezedet": {"input_size": 128}}) is None  # not one axis
    assert results.saturation(sizes[1:], "input_size", {"squeezedet": {"input_size": 128}})["saturation_value"] == 128


def test_target_checks_name_each_target_and_tolerate_the_screened_size_estimate():
    from mobilekit.explore.screen import target_checks, violations
    from mobilekit.explore.space import Targets

    t = Targets(min_accuracy=0.8, max_size_kb=100, sram_kb=64, fps=30, energy_mj=1.0)
    measured = {"accuracy_int8": 0.79, "size_gzip_bytes": 105 * 1024, "footprint_bytes": 64 * 1024,
                "latency_device_ms": 1000 / 29.9, "energy_mj": 1.0}
    checks = target_checks(measured, t)
    assert {k: met for k, (met, _) in checks.items()} == {"min_accuracy": False, "max_size_kb": False,
                                                          "sram_kb": True, "fps": False, "energy_mj": True}
    assert violations(measured, t) == ["gzip 105.0 KiB > 100 KiB", "29.9 FPS < 30 FPS", "int8 accuracy 79.00% < 80.00%"]
    # Untrained sizes are estimates: 10% of slack before a point is dropped unseen.
    assert target_checks({**measured, "screened": True}, t)["max_size_kb"][0] is True
    assert target_checks({"size_gzip_bytes": 111 * 1024, "screened": True}, t)["max_size_kb"][0] is False
    assert target_checks({"accuracy_int8": None}, Targets(min_accuracy=0.5)) == {}


def test_plan_counts_ids_and_families(tmp_path):
    base = {"arch": "squeezenet1_1", "input_size": 32, "epochs": 0.3}
    grid, _ = plan(ExploreConfig(base=base, space={"squeeze_ratio": ["0.25", "0.5"], "pct3x3": ["0.25", "0.5"]},
                                 seeds=2), "fp")
    assert len(grid) == 8 and len({p.id for p in grid}) == 8
    more, _ = plan(ExploreConfig(base=base, space={"squeeze_ratio": ["0.25", "0.5", "0.75"],
                                                   "pct3x3": ["0.25", "0.5"]}, seeds=2), "fp")
    assert {p.id for p in grid} < {p.id for p in more} and len(more) == 12  # a new value adds only new points
    assert {p.id for p in plan(ExploreConfig(base=base, space={"squeeze_ratio": ["0.25"]}), "other data")[0]} \
        .isdisjoint(p.id for p in grid)
    one, _ = plan(ExploreConfig(base={**base, "squeeze_ratio": 0.5}, search="oneatatime",
                                space={"squeeze_ratio": ["0.125", "0.25", "0.5"], "pct3x3": ["0.25", "0.5"]}), "fp")
    assert len(one) == 4  # 3 + 2 - the shared base point
    assert all(p.knobs["pct3x3"] == 0.5 or p.knobs["squeeze_ratio"] == 0.5 for p in one)
    fam, _ = plan(ExploreConfig(base={**base, "incr_e": 32}, search="oneatatime",  # a squeezenet knob in the base
                                space={"arch": ["squeezenet1_1", "mobilenet_v1"], "alpha": ["0.25", "0.5"],
                                       "sparsity": ["0.5", "0.75"]}), "fp")
    assert sorted((p.knobs["arch"], p.knobs["alpha"], p.knobs["sparsity"]) for p in fam) == [
        ("mobilenet_v1", 0.25, 0.5), ("mobilenet_v1", 0.5, 0.5), ("mobilenet_v1", 1.0, 0.5),
        ("mobilenet_v1", 1.0, 0.75), ("squeezenet1_1", None, 0.5), ("squeezenet1_1", None, 0.75)]
    assert all(p.config["arch_kwargs"]["incr_e"] == 32 for p in fam if p.knobs["arch"] == "squeezenet1_1")
    assert all("incr_e" not in (p.config["arch_kwargs"] or {}) for p in fam if p.knobs["arch"] == "mobilenet_v1")
    bad, _ = plan(ExploreConfig(base={**base, "recipe": "int8-ptq"},
                                space={"sparsity": ["0", "0.5"], "prune_epochs": ["0", "0.1"]}), "fp")
    invalid = [p for p in bad if p.error]
    assert len(invalid) == 1 and invalid[0].knobs["sparsity"] == 0.5 and "prune_epochs" in invalid[0].error


def test_precision_is_a_knob_and_int8_points_keep_their_ids():
    base = {"arch": "squeezenet1_1", "input_size": 32, "epochs": 0.3}
    before = plan(ExploreConfig(base=base, space={"squeeze_ratio": ["0.25"]}), "fp")[0]
    mixed, _ = plan(ExploreConfig(base=base, space={"squeeze_ratio": ["0.25"], "precision": ["int8", "auto"],
                                                    "max_agreement_drop": ["0.5", "2"]}), "fp")
    assert len(mixed) == 3 and not any(p.error for p in mixed)  # a budget does not apply to int8: one point
    int8 = [p for p in mixed if p.knobs["precision"] == "int8"]
    assert len(int8) == 1 and int8[0].id == before[0].id and int8[0].config["max_agreement_drop"] is None
    auto = sorted(p.config["max_agreement_drop"] for p in mixed if p.knobs["precision"] == "auto")
    assert auto == [0.5, 2.0]
    with pytest.raises(MobilekitError, match="precision must be one of int8, int16x8, auto; received precision='int4'"):
        plan(ExploreConfig(base=base, space={"precision": ["int4"]}), "fp")  # refused as the build refuses it


def test_sweeps_planned_before_the_settings_schema_keep_their_point_ids(monkeypatch, capsys):
    """41 points of five sweeps (flags, knobs of three families, precision budgets, a teacher, pretrained weights)
    as the code before the settings schema named them: a sweep folder made then resumes with nothing rebuilt when
    asked for the files it holds: int8 in and out (`--io int8`, the only interface then) and the recipe's sparsity
    as asked (`--sparsity 0.5`: no accuracy budget, none then); the recipe sweep's int8-ptq half without
    `--sparsity` (it would prune them). At the defaults they are other files, so other points. (A new mobilekit
    version changes every id on purpose: regenerate the file then.)"""
    from mobilekit.explore import command, engine

    golden = json.loads((Path(__file__).parent / "data" / "point_ids_0.1.0.json").read_text())
    planned = []
    monkeypatch.setattr(engine, "explore", lambda cfg: planned.append(
        sorted(p.id for p in plan(cfg, golden["fingerprint"])[0])) or {"points": []})
    monkeypatch.setattr(command, "print_summary", lambda doc, out: None)
    for sweep in golden["sweeps"]:
        asked = []
        for fixed in (["--sparsity", "0.5"], []):
            assert cli.main(["explore", *sweep["argv"], "--io", "int8", *fixed, "--out", "never-written"]) == 0, \
                capsys.readouterr().err
            asked.append(planned.pop())
        if "recipe=int8-ptq,prune-int8" in sweep["argv"]:
            halves = [set(a) & set(sweep["ids"]) for a in asked]
            assert sorted(halves[0] | halves[1]) == sweep["ids"] and all(len(h) == 4 for h in halves), sweep["argv"]
        else:
            assert asked[0] == sweep["ids"], sweep["argv"]
        assert cli.main(["explore", *sweep["argv"], "--out", "never-written"]) == 0
        assert not set(planned.pop()) & set(sweep["ids"]), sweep["argv"]
    assert sum(len(s["ids"]) for s in golden["sweeps"]) == 41


def test_bad_specs_are_one_line_errors_before_anything_is_written(cli_error, tmp_path):
    out = tmp_path / "sweep"
    base = ["explore", "--arch", "squeezenet1_1", *TINY, "--out", str(out)]
    assert "unknown knob 'foo'" in cli_error(*base, "--space", "foo=1,2")
    assert "squeeze_ratio=-1.0" in cli_error(*base, "--space", "squeeze_ratio=-1,0.5")
    assert "empty value list" in cli_error(*base, "--space", "squeeze_ratio=")
    assert "--device" in cli_error(*base, "--space", "pct3x3=0.5", "--fps", "30")
    assert "127.0.0.1:1" in cli_error(*base, "--space", "pct3x3=0.5", "--address", "127.0.0.1:1")
    assert "--trials" in cli_error(*base, "--space", "pct3x3=0.5", "--search", "optuna")
    assert "bypass='bogus'" in cli_error(*base, "--space", "bypass=simple,bogus")
    assert "input_size takes int" in cli_error(*base, "--space", "input_size=32,abc")
    assert "alpha" in cli_error(*base, "--space", "alpha=0.5")  # squeezenet has no alpha
    assert "unknown objective" in cli_error(*base, "--space", "pct3x3=0.5", "--objectives", "acc:max")
    spec = tmp_path / "s.yaml"
    spec.write_text("space: {pct3x3: [0.5]}\nbudget: 3\n")
    assert "unknown key 'budget'" in cli_error(*base, "--spec", str(spec))
    spec.write_text("space: [unclosed\n")
    assert "not valid yaml" in cli_error(*base, "--spec", str(spec))
    assert "no sweep results" in cli_error("explore", "--report", str(tmp_path / "none"))
    mixed = cli_error("explore", "--arch", "squeezedet,squeezenet1_1", *TINY, "--space", "pct3x3=0.5", "--out",
                      str(out))
    assert "--arch mixes a detector and a classifier (squeezedet, squeezenet1_1)" in mixed
    assert not out.exists()


def test_spec_file_equals_flags_and_flags_win(tmp_path):
    from mobilekit.explore.command import config_from_args

    spec = tmp_path / "sweep.yaml"
    spec.write_text("base: {input_size: 40, epochs: 0.2}\nspace: {squeeze_ratio: [0.25, 0.5]}\n"
                    "search: oneatatime\nseeds: 2\ntargets: {max_size_kb: 900}\n")
    from mobilekit.cli import flags as cli_flags
    from mobilekit.cli.explore import OWN_FLAGS

    parser = cli.build_parser()

    def config(*argv):
        args = parser.parse_args(["explore", *argv])
        given = {t[2:].replace("-", "_") for t in argv if t.startswith("--")}
        return config_from_args(args, cli_flags.settings_of(args, skip=OWN_FLAGS), cli_flags.arch_kwargs_of(args), given)

    from_file = config("--spec", str(spec))
    assert from_file.base["input_size"] == 40 and from_file.base["epochs"] == 0.2
    assert from_file.search == "oneatatime" and from_file.seeds == 2 and from_file.targets.max_size_kb == 900
    flags = config("--input-size", "40", "--epochs", "0.2", "--space", "squeeze_ratio=0.25,0.5",
                   "--search", "oneatatime", "--seeds", "2", "--max-size-kb", "900")
    assert plan(from_file, "fp")[0] == plan(flags, "fp")[0]
    won = config("--spec", str(spec), "--input-size", "32", "--seeds", "1")
    assert won.base["input_size"] == 32 and won.seeds == 1 and won.search == "oneatatime"
    # Build options such as the export rewrites reach every point's build.
    rewritten = config("--spec", str(spec), "--recipe", "int8-ptq", "--rewrites", "pad-fold,space-to-depth-stem")
    assert rewritten.base["rewrites"] == ("pad-fold", "space-to-depth-stem")
    assert "rewrites" not in from_file.base
    # The spec's base point names the arch: honoured, not replaced by --arch's default.
    spec.write_text("base: {arch: mobilenet_v1, input_size: 32}\nspace: {alpha: [0.25, 0.5]}\n")
    assert arch_list(config("--spec", str(spec))) == ["mobilenet_v1"]
    assert arch_list(config("--spec", str(spec), "--arch", "mobilenet_v2")) == ["mobilenet_v2"]  # the flag wins


def test_points_are_counted_before_any_is_made():
    base = {"arch": "squeezenet1_1"}
    values = [str(v) for v in range(1, 2001)]
    assert point_count(ExploreConfig(base=base, space={"a": values, "b": values})) == 4_000_000
    assert point_count(ExploreConfig(base=base, space={"a": values, "b": values}, search="oneatatime", seeds=3)) \
        == 12_000
    assert point_count(ExploreConfig(base=base, space={"a": values[:2], "arch": ["x", "y", "z"]})) == 6
    assert point_count(ExploreConfig(base=base, space={"a": values[:2]}, search="optuna", trials=50, seeds=2)) \
        == 100
    with pytest.raises(MobilekitError, match="asks for 4,000,000 points, more than --max-points 1,000"):
        plan(ExploreConfig(base=base, space={"squeeze_ratio": values, "pct3x3": values}), "fp")  # from the lengths


# ---- real sweeps on Ray (slow) ----

slow = pytest.mark.slow


@slow
def test_sweep_resumes_after_sigkill_with_every_row_and_untouched_points(acceptance):
    out, first, result = acceptance
    doc = json.loads((out / "results.json").read_text())
    rows = doc["rows"]
    assert doc["schema_version"] == 1 and len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert sorted((r["squeeze_ratio"], r["pct3x3"]) for r in rows) == [(0.25, 0.25), (0.25, 0.5), (0.5, 0.25),
                                                                       (0.5, 0.5)]
    assert 1 <= len(first) < 4
    for pid, files in first.items():  # finished before the kill: not re-run, not rewritten
        now = {f.name: (f.stat().st_mtime_ns, _sha(f)) for f in (out / "points" / pid).iterdir()}
        assert now == files, pid
    assert not list((out / "points").glob(".*")), "a temporary point folder was left behind"
    assert "4 ok, 0 failed, 0 screened out" in result.stdout
    for r in rows:
        assert 0 <= r["accuracy_int8"] <= 1 and r["size_gzip_bytes"] < r["size_tflite_bytes"]
        assert (out / r["tflite"]).is_file() and r["params"] > 0 and r["macs"] > 0 and r["train_seconds"] > 0
        assert r["latency_host_ms"] > 0 and r["peak_activation_bytes"] > 0 and r["energy_mj"] > 0
    # More squeeze and more 3x3 filters cost parameters: the space is what it says.
    by = {(r["squeeze_ratio"], r["pct3x3"]): r for r in rows}
    assert by[(0.25, 0.25)]["params"] < by[(0.25, 0.5)]["params"] < by[(0.5, 0.5)]["params"]


@slow
def test_results_table_plots_and_pareto_column(acceptance):
    out, _, _ = acceptance
    doc = json.loads((out / "results.json").read_text())
    objectives = [tuple(o) for o in doc["sweep"]["objectives"]]
    assert objectives == [("accuracy_int8", "max"), ("size_gzip_bytes", "min")]
    assert {r["point"] for r in doc["rows"] if r["pareto"]} == _brute_front(doc["rows"], objectives)
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    for column in ("point", "squeeze_ratio", "pct3x3", "status", "accuracy_int8", "size_tflite_bytes",
                   "size_gzip_bytes", "latency_host_ms", "latency_device_ms", "energy_mj", "params", "macs",
                   "peak_activation_bytes", "train_seconds", "pareto", "meets_targets", "tflite"):
        assert column in header, column
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"accuracy_vs_size.png", "accuracy_vs_latency.png"} <= set(pngs) and len(pngs) >= 2
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "explore.md").read_text()
    assert f"`{doc['recommended']}`" in md and "![accuracy_vs_size.png](accuracy_vs_size.png)" in md
    best = max((r for r in doc["rows"] if r["status"] == "ok"), key=lambda r: (r["accuracy_int8"],
                                                                               -r["size_gzip_bytes"]))
    assert doc["recommended"] == best["point"]  # no targets: the most accurate point
    # --report re-renders from the stored results without training.
    (out / "explore.md").unlink()
    for p in out.glob("*.png"):
        p.unlink()
    t0 = time.perf_counter()
    again = _explore("--report", str(out), timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "explore.md").read_text() == md and len(list(out.glob("*.png"))) == len(pngs)
    assert time.perf_counter() - t0 < 120


@slow
def test_each_point_is_byte_identical_to_mobilekit_build(acceptance, tmp_path):
    out, _, _ = acceptance
    rows = sorted(json.loads((out / "results.json").read_text())["rows"], key=lambda r: r["point"])
    for row in (rows[0], rows[-1]):  # two of the four: each rebuild costs a full build
        folder = tmp_path / row["point"]
        result = subprocess.run([MOBILEKIT, "build", "--arch", "squeezenet1_1", "--squeeze-ratio",
                                 str(row["squeeze_ratio"]), "--pct3x3", str(row["pct3x3"]), *TINY, "--out", str(folder)],
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (folder / "squeezenet1_1.tflite").read_bytes() == (out / row["tflite"]).read_bytes(), row["point"]
        report = json.loads((folder / "report.json").read_text())
        assert report["accuracy"]["tflite_int8"] == row["accuracy_int8"]
        assert report["sizes"]["int8_gzip_bytes"] == row["size_gzip_bytes"]


@slow
@pytest.mark.extended
def test_optuna_reuses_finished_points_through_ray(acceptance, tmp_path):
    """`--search optuna` over the acceptance sweep's space, resumed from its points: each suggestion is a point the
    folder holds (shipped to the trials with the data), so nothing is rebuilt and every row stays as it was."""
    import shutil

    out, _, _ = acceptance
    resumed = tmp_path / "optuna"
    shutil.copytree(out, resumed)
    before = {p.parent.name: _sha(p) for p in resumed.glob("points/*/point.json")}
    result = _explore("--arch", "squeezenet1_1", "--space", "squeeze_ratio=0.25,0.5", "--space", "pct3x3=0.25,0.5",
                      *TINY, "--search", "optuna", "--trials", "3", "--out", str(resumed), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((resumed / "results.json").read_text())
    assert doc["counts"] == {"ok": 4, "failed": 0, "screened_out": 0} and doc["sweep"]["search"] == "optuna"
    assert {p.parent.name: _sha(p) for p in resumed.glob("points/*/point.json")} == before  # nothing rebuilt


@slow
@pytest.mark.extended
def test_ray_job_submit_runs_the_sweep_on_the_jobs_cluster(acceptance, tmp_path):
    """`ray job submit -- mobilekit explore ...`: the driver runs on the head and uses that cluster (no
    --address), the live line names it, and the points are the embedded run's, byte for byte."""
    import socket

    from ray.cluster_utils import Cluster

    out, _, _ = acceptance
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": True,
                                                            "dashboard_host": "127.0.0.1", "dashboard_port": port})
    try:  # a head this test owns (and stops: no `ray stop`, which would stop every Ray on the machine)
        two = ["--arch", "squeezenet1_1", "--space", "squeeze_ratio=0.25,0.5", "--pct3x3", "0.25", *TINY]
        ray_cli = str(Path(sys.executable).parent / "ray")
        result = subprocess.run([ray_cli, "job", "submit", "--address", f"http://127.0.0.1:{port}", "--",
                                 MOBILEKIT, "explore", *two, "--out", str(tmp_path / "cluster")],
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    finally:
        cluster.shutdown()
    assert "on 1 Ray node(s), 2 CPUs" in result.stdout, result.stdout[-3000:]
    assert "a local Ray" not in result.stdout
    remote = json.loads((tmp_path / "cluster" / "results.json").read_text())["rows"]
    local = {r["point"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert len(remote) == 2 and {r["status"] for r in remote} == {"ok"}
    for r in remote:  # same point ids (same config, seed, data, version) and the same bytes
        assert r["point"] in local
        assert _sha(tmp_path / "cluster" / r["tflite"]) == _sha(out / local[r["point"]]["tflite"])
        assert r["accuracy_int8"] == local[r["point"]]["accuracy_int8"]


@slow
@pytest.mark.extended
def test_a_sweep_whose_points_cannot_start_stops_with_one_line(tmp_path):
    """A cluster whose only CPU is held by another job: the sweep stops after --schedule-timeout, not never."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)

        @ray.remote(num_cpus=1)
        class Holder:  # another user's job on the cluster's only CPU
            def ready(self):
                return True

        holder = Holder.remote()
        assert ray.get(holder.ready.remote())
        out = tmp_path / "sweep"
        result = _explore("--arch", "squeezenet1_1", "--space", "squeeze_ratio=0.5", *TINY, "--out", str(out),
                          "--address", cluster.address, "--schedule-timeout", "10", timeout=600)
    finally:
        ray.shutdown()
        cluster.shutdown()
    err = [line for line in result.stderr.splitlines() if line.strip()]  # the live progress lines, then the error
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert err[-1].startswith("mobilekit explore: error: no point could start for 10 s")
    assert not list(out.glob("points/*/point.json"))


@slow
def test_a_local_sweep_starts_its_own_ray_beside_another_cluster():
    """Another Ray cluster on the machine (Ray's record points at it): the local default must not attach to it."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    probe = ("from mobilekit.raycluster import init, shutdown\n"
             "ray = init(None)\n"
             "print(ray.get_runtime_context().gcs_address, ray.cluster_resources().get('CPU'))\n"
             "shutdown(ray)\n")
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                                env={**os.environ, "RAY_ADDRESS": cluster.address})
    finally:
        cluster.shutdown()
    assert result.returncode == 0, result.stderr[-2000:]
    gcs, cpus = result.stdout.split()
    assert gcs != cluster.address and float(cpus) == os.cpu_count()


@pytest.mark.needs_arm_root
@slow
def test_targets_screen_points_out_before_training_and_bad_combinations_fail_alone(tmp_path):
    """--device snapdragon-450 with an impossible frame rate: every valid point is screened out on its
    emulated ARM count, none is trained (Ray is not even started); the invalid combination is a failed row."""
    out = tmp_path / "screened"
    result = _explore("--arch", "squeezenet1_1", *TINY, "--recipe", "int8-ptq", "--space", "sparsity=0,0.5",
                      "--space", "prune_epochs=0,0.1", "--device", "snapdragon-450", "--fps", "100000",
                      "--sram-kb", "8192", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    assert doc["counts"] == {"ok": 0, "failed": 1, "screened_out": 3}
    failed = next(r for r in doc["rows"] if r["status"] == "failed")
    assert failed["sparsity"] == 0.5 and failed["prune_epochs"] == 0 and "prune_epochs" in failed["error"]
    for r in doc["rows"]:
        if r["status"] == "screened_out":
            assert "FPS < 100000 FPS" in r["error"] and r["latency_device_ms"] > 0 and not r["tflite"]
            assert doc["screened_out"][r["point"]] == r["error"]
    assert not list(out.glob("points/*/*.tflite")) and not (out / "ray").exists()
    assert "No point meets every target" in (out / "explore.md").read_text()
    # Counted once per architecture config: sparsity does not change the dense int8 kernels' count,
    # but it is part of the key (the file's size differs), so two entries for three points.
    assert len(list((out / "screen").glob("*.json"))) == 2


@pytest.mark.needs_arm_root
@slow
@pytest.mark.extended
def test_arm_counts_of_trained_and_untrained_files_of_one_config_are_equal(acceptance):
    """Why screening may count instructions once per architecture config: dense int8 kernels run the
    same instructions whatever the weight values. (The body's: the app interface in front requantizes or only
    shifts by 128 as the calibration's input range fell, a few instructions per input pixel either way.)"""
    from mobilekit.app_io import body
    from mobilekit.emulate import count_instructions
    from mobilekit.explore.screen import untrained_int8

    out, _, _ = acceptance
    row = json.loads((out / "results.json").read_text())["rows"][0]
    point = json.loads((out / "points" / row["point"] / "point.json").read_text())
    _, untrained = untrained_int8(point["config"], 10)
    trained = body((out / row["tflite"]).read_bytes())
    assert untrained != trained
    for cpu in ("cortex-a53", "cortex-a76"):
        counts = [count_instructions(c, cpu, threads=(1,), repeats=1)["threads"]["1"]["instructions"]
                  for c in (untrained, trained)]
        assert counts[0] == counts[1], (cpu, counts)


@slow
@pytest.mark.extended
def test_a_detector_sweep_ships_its_boxes_and_ranks_on_map(tmp_path):
    """`explore --arch squeezedet --space input_size=96x160,128`: the embedded set travels to the workers as its
    files, each point is a detector file (int8 up to its post-processing) at its input size, square or wide, and the
    sweep's accuracy axis is mAP@0.5."""
    from mobilekit.detection.postprocess import detector_problems

    out = tmp_path / "sweep"
    result = _explore("--arch", "squeezedet", "--anchors-per-cell", "3", "--limit-train", "64", "--limit-test", "16",
                      "--epochs", "0.3", "--recipe", "int8-ptq", "--min-stage-steps", "0", "--latency-runs", "3",
                      "--space", "input_size=96x160,128", "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    rows = doc["rows"]
    assert doc["sweep"]["metric"] == "mAP@0.5" and len(rows) == 2 and {r["status"] for r in rows} == {"ok"}
    by = {str(r["input_size"]): r for r in rows}
    assert set(by) == {"[96, 160]", "128"} and all(0 <= r["accuracy_int8"] <= 1 for r in rows)
    assert by["[96, 160]"]["params"] == by["128"]["params"]  # fully convolutional: the size sets the grid only
    assert by["[96, 160]"]["macs"] < by["128"]["macs"]  # a 5x9 grid against 7x7
    for r in rows:
        assert detector_problems((out / r["tflite"]).read_bytes()) == []
        report = json.loads((out / "points" / r["point"] / "report.json").read_text())
        assert report["accuracy"]["metric"] == "mAP@0.5" and report["accuracy"]["test_images"] == 16
        assert report["accuracy"]["dataset"].startswith("the embedded detection set")
        size = report["config"]["input_size"]
        assert report["preprocessing"]["size"] == ([size] * 2 if size == 128 else [96, 160])
        assert report["accuracy"]["detection"]["anchors_per_cell"] == 3
    md = (out / "explore.md").read_text()
    assert "| int8 mAP@0.5 |" in md
