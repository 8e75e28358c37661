"""One declaration per build setting: the Python API, the build flags and an explore spec refuse the same
out-of-range values with the same one-line message and accept the same in-range ones (mobilekit.settings)."""

from __future__ import annotations

import json

import pytest

from mobilekit import cli
from mobilekit.cli import flags as cli_flags
from mobilekit.cli.explore import OWN_FLAGS
from mobilekit.errors import MobilekitError
from mobilekit.explore.command import config_from_args
from mobilekit.explore.space import BUILD_KNOBS, ID_DEFAULTS, ExploreConfig, plan
from mobilekit.pipeline import BuildConfig
from mobilekit.pipeline.config import SETTINGS, TRAINING_FIELDS

BOUNDED = [s for s in SETTINGS.values() if s.high is not None]
# What a field needs around it to be a valid build (transfer settings need weights and data, a budget needs auto).
CONTEXT = {"head_epochs": {"arch": "mobilenet_v2", "weights": "imagenet", "data": "fashion-mnist"},
           "fine_tune_lr": {"arch": "mobilenet_v2", "weights": "imagenet", "data": "fashion-mnist"},
           "max_agreement_drop": {"precision": "auto"}, "min_output_sqnr": {"precision": "auto"},
           "clusters": {"recipe": "cluster-int8"}, "prune_epochs": {"recipe": "int8-ptq"},
           "workers": {"batch_size": 1024}}  # a global batch every worker count in the bounds divides


def _values(s) -> tuple[list, list]:
    """Values just outside the field's bounds, and its bounds themselves (or inside an open one)."""
    step = 1 if s.kind is int else 1.0
    low, high = s.kind(s.low), s.kind(s.high)
    outside = [low if s.low_open else low - step, high if s.high_open else high + step]
    inside = [low + (high - low) / 2 if s.low_open else low, (low + high) / 2 if s.high_open else high]
    return outside, [s.kind(v) if s.kind is int else float(v) for v in inside]


def _text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _flags(settings: dict) -> list[str]:
    return [t for name, v in settings.items() for t in (SETTINGS[name].cli_flag, _text(v))]


def _cli_message(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def _explore(tmp_path, name: str, base: dict) -> ExploreConfig:
    spec = tmp_path / "spec.json"
    knob = "epochs" if name == "lr" else "lr"
    spec.write_text(json.dumps({"base": base, "space": {knob: [0.5 if knob == "epochs" else 0.003]}}))
    argv = ["explore", "--spec", str(spec)]
    args = cli.build_parser().parse_args(argv)
    return config_from_args(args, cli_flags.settings_of(args, skip=OWN_FLAGS), cli_flags.arch_kwargs_of(args),
                            {"spec"})


@pytest.mark.parametrize("s", BOUNDED, ids=lambda s: s.name)
def test_every_bound_is_one_rule_on_the_api_the_build_flags_and_explore(s, capsys, tmp_path):
    context = CONTEXT.get(s.name, {})
    outside, inside = _values(s)
    for value in outside:
        with pytest.raises(MobilekitError) as api:
            BuildConfig(**context, **{s.name: value})
        message = str(api.value)
        assert message.startswith(f"{s.name} must be ") and f"received {s.name}={value!r}" in message
        assert s.bounds() in message
        cli_err = _cli_message(capsys, ["build", *_flags({**context, s.name: value})])
        assert message in cli_err and len(cli_err.strip().splitlines()) == 1, cli_err
        if not s.explore:  # one build's own (--workers): no explore surface
            continue
        with pytest.raises(MobilekitError) as spec:
            _explore(tmp_path, s.name, {**context, s.name: value})
        assert message in str(spec.value)
        if s.sweep:
            with pytest.raises(MobilekitError) as space:
                plan(ExploreConfig(base=dict(context), space={s.name: [_text(value)]}), "fp")
            assert message in str(space.value)
    for value in inside:
        assert getattr(BuildConfig(**context, **{s.name: value}), s.name) == value
        args = cli.build_parser().parse_args(["build", *_flags({**context, s.name: value})])
        assert getattr(BuildConfig(**cli_flags.settings_of(args)), s.name) == value
        if not s.explore:
            continue
        points, _ = plan(_explore(tmp_path, s.name, {**context, s.name: value}), "fp")
        assert points and not points[0].error and points[0].config[s.name] == value


def test_the_surfaces_are_generated_from_the_declarations():
    parser = cli.build_parser()
    build = parser._subparsers._group_actions[0].choices["build"]  # noqa: SLF001 - argparse has no public walk
    flags = {a.dest: a for a in build._actions}  # noqa: SLF001
    for name, s in SETTINGS.items():
        if s.cli_flag:
            assert flags[name].option_strings[0] == s.cli_flag and flags[name].default == s.default
            assert s.help_text().split()[0] in flags[name].help
        else:
            assert name not in flags
    assert set(BUILD_KNOBS) == {n for n, s in SETTINGS.items() if s.sweep}
    assert ID_DEFAULTS == {"precision": "int8", "max_agreement_drop": None, "min_output_sqnr": None,
                           "keep_float": [], "int16": [], "io": "int8", "max_accuracy_drop": None,
                           "strict_budget": False, "validation_split": 0.1, "raw_outputs": False, "workers": 1,
                           "address": None, "max_failures": 1}
    assert set(TRAINING_FIELDS) >= {"epochs", "lr", "recipe", "data"} and "seed" not in TRAINING_FIELDS
    assert list(BuildConfig().to_dict()) == list(SETTINGS)  # report.json's config: every field, in order


def test_mode_defaults_resolve_as_declared():
    scratch = BuildConfig()
    assert (scratch.input_size, scratch.epochs, scratch.batch_size, scratch.label_smoothing) == (48, 1.5, 128, 0.0)
    transfer = BuildConfig(arch="mobilenet_v2", weights="imagenet", data="fashion-mnist")
    assert (transfer.input_size, transfer.epochs, transfer.head_epochs, transfer.batch_size, transfer.fine_tune,
            transfer.fine_tune_lr, transfer.label_smoothing) == (224, 5.0, 5.0, 32, "all", 1e-4, 0.1)
    as_is = BuildConfig(arch="mobilenet_v2", weights="imagenet")
    assert (as_is.recipe, as_is.epochs, as_is.sparsity, as_is.qat, as_is.calibration) == (
        "int8-ptq", 0.0, 0.0, False, "percentile")
    assert BuildConfig(**{k: v for k, v in as_is.to_dict().items()}) == as_is  # a report's config reads back
    with pytest.raises(MobilekitError, match="lr=0.1 does not apply to weights='imagenet' without data"):
        BuildConfig(arch="mobilenet_v2", weights="imagenet", lr=0.1)


def test_the_flags_help_states_each_default_once():
    text = cli.build_parser()._subparsers._group_actions[0].choices["build"].format_help()  # noqa: SLF001
    assert "(default: 48; 224 with --weights)" in " ".join(text.split())
    assert "(default: 1.5; 5 with --weights and data)" in " ".join(text.split())
    assert "default: the recipe's, else 0.5" in " ".join(text.split())
