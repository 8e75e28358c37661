"""Guard rails and first-hour details: warnings for useless models and tiny data, recipe overrides named,
the report's preprocessing steps (``pixel - 128`` only where exact), limits on image folders, quiet logs,
crash-safe output folders."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mobilekit.errors import MobilekitError


def test_near_chance_and_large_losses_are_warned_about():
    from mobilekit.pipeline.guards import accuracy_warnings, data_warnings

    balanced = np.repeat(np.arange(10), 50)
    assert accuracy_warnings({"keras_float": 0.9, "tflite_int8": 0.89}, balanced, 10) == []
    near, = accuracy_warnings({"keras_float": 0.12, "tflite_int8": 0.088}, balanced, 10)
    assert "8.8%" in near and "chance (10.0%: 1 in 10)" in near
    skewed = np.array([0] * 80 + [1] * 10 + [2] * 10)  # predicting class 0 always gives 80%
    majority, = accuracy_warnings({"keras_float": 0.84, "tflite_int8": 0.82}, skewed, 3)
    assert "the majority class" in majority and "80.0%" in majority
    loss, = accuracy_warnings({"keras_float": 0.9, "tflite_int8": 0.7}, balanced, 10)
    assert "20.0% points below float" in loss
    assert data_warnings(60_000, 128) == []
    tiny, = data_warnings(72, 128)
    assert "72 training images at --batch-size 128 give 1 optimizer step(s)" in tiny and "--batch-size 7" in tiny


def test_a_recipe_changed_by_flags_is_labelled_with_its_overrides():
    from mobilekit.pipeline import BuildConfig
    from mobilekit.pipeline.guards import recipe_section

    plain = recipe_section(BuildConfig())
    assert plain["label"] == "prune-int8" and plain["overrides"] == {}
    changed = recipe_section(BuildConfig(sparsity=0.8, qat_epochs=1.0))
    assert changed["name"] == "prune-int8" and changed["overrides"] == {"sparsity": 0.8, "qat_epochs": 1.0}
    assert changed["label"] == "prune-int8 + overrides (sparsity=0.8, qat_epochs=1.0)"
    assert recipe_section(BuildConfig(recipe="deep-compression", clusters=8))["label"].startswith(
        "deep-compression + overrides (clusters=8")


def test_pixel_minus_128_is_claimed_only_where_it_is_exact():
    from mobilekit.data import OFFSET, SCALE, input_table, is_plain_pixel
    from mobilekit.report import preprocessing_steps

    assert is_plain_pixel(SCALE, OFFSET, 0.003921568859368563, -128)  # what QAT builds get
    assert not is_plain_pixel(SCALE, OFFSET, 0.00390625, -128)  # int8-ptq's 1/256
    assert input_table(SCALE, OFFSET, 0.00390625, -128)[255] == 127  # 255 * 256/255 - 128 rounds to 128
    pre = {"size": [48, 48], "channels": 3, "scale": SCALE, "offset": OFFSET, "resize": "bilinear",
           "layout": "NHWC", "channel_order": "RGB", "grey": "R = G = B", "aspect_ratio": "stretched",
           "pixel_centers": "half-pixel", "antialias": False, "rounding": "round half to even"}
    q = {"input": {"dtype": "int8", "scale": 0.00390625, "zero_point": -128, "pixel_minus_128_exact": False},
         "output": {"dtype": "int8", "scale": 0.00390625, "zero_point": -128}}
    text = "\n".join(preprocessing_steps(pre, q))
    assert "not exactly `pixel - 128`" in text and "0.00390625 + (-128)), -128, 127)" in text
    for convention in ("RGB", "R = G = B", "stretched", "half-pixel", "antialias off", "round half to even"):
        assert convention in text, convention
    q["input"].update(scale=0.003921568859368563, pixel_minus_128_exact=True)
    assert "exactly `pixel - 128` for every pixel value" in "\n".join(preprocessing_steps(pre, q))


def _image_folder(root, classes=("cats", "dogs"), per_class=10):
    from mobilekit.backend import tf

    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            png = tf.io.encode_png(np.full((8, 8, 3), 20 * i + k, np.uint8)).numpy()
            (root / c / f"{i}.png").write_bytes(png)
    return root


def test_limits_apply_to_image_folders_seeded(tmp_path):
    from mobilekit.data import load_image_folder

    root = _image_folder(tmp_path / "data")
    full = load_image_folder(root, size=8)
    assert (len(full.x_train), len(full.x_test)) == (16, 4)
    a = load_image_folder(root, size=8, limit_train=5, limit_test=3, seed=1)
    b = load_image_folder(root, size=8, limit_train=5, limit_test=3, seed=1)
    assert (len(a.x_train), len(a.x_test)) == (5, 3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    # The kept images are a subset of the unlimited split with the same seed.
    full1 = load_image_folder(root, size=8, seed=1)
    assert all(any(np.array_equal(x, y) for y in full1.x_train) for x in a.x_train)


def test_libraries_are_quiet_by_default_and_verbose_on_request(tmp_path):
    """LiteRT's native "Created TensorFlow Lite XNNPACK delegate" line: hidden unless --verbose."""
    from mobilekit.convert import convert_int8
    import mobilekit

    model = mobilekit.create("squeezenet1_1", input_shape=(32, 32, 3), classes=10)
    path = tmp_path / "m.tflite"
    path.write_bytes(convert_int8(model, np.random.default_rng(0).random((8, 32, 32, 3), np.float32)))
    script = ("import sys; from mobilekit.backend import set_verbose; set_verbose(sys.argv[2] == '1'); "
              "from mobilekit.litert import make_interpreter; make_interpreter(open(sys.argv[1], 'rb').read())")
    quiet, verbose = (subprocess.run([sys.executable, "-c", script, str(path), flag], capture_output=True, text=True,
                                     timeout=300) for flag in ("0", "1"))
    assert quiet.returncode == 0 and verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert "XNNPACK" not in quiet.stderr and quiet.stderr.strip() == ""
    assert "XNNPACK delegate" in verbose.stderr


def test_a_staged_folder_replaces_the_previous_output_whole_or_not_at_all(tmp_path):
    from mobilekit.files import staged_dir

    out = tmp_path / "out"
    with staged_dir(out) as stage:
        (stage / "a.txt").write_text("first")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    with pytest.raises(RuntimeError):
        with staged_dir(out) as stage:
            (stage / "b.txt").write_text("half")
            raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and (out / "a.txt").read_text() == "first"
    with staged_dir(out) as stage:
        (stage / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]  # replaced whole, no stale file from before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def test_a_dead_process_staging_folder_is_swept_by_the_next_write(tmp_path):
    from mobilekit.files import staged_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    leftover = tmp_path / f".out.partial-{dead}-abc"
    leftover.mkdir()
    (leftover / "model.tflite").write_bytes(b"half")
    with staged_dir(tmp_path / "out") as stage:
        (stage / "x").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_checks_create_nothing(tmp_path):
    from mobilekit.files import check_output_path

    deep = tmp_path / "a" / "b" / "c"
    assert check_output_path(deep, "dir") == deep and not (tmp_path / "a").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(MobilekitError, match="not empty and holds no report.json"):
        check_output_path(tmp_path / "mine", "dir", "--out", owned_marker="report.json")
    (tmp_path / "mine" / "report.json").write_text("{}")
    check_output_path(tmp_path / "mine", "dir", "--out", owned_marker="report.json")  # an earlier build's
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_a_killed_sweep_points_temporary_folder_is_removed_when_the_point_runs_again(tmp_path):
    from mobilekit.files import remove_dead_process_folders

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".abc123.tmp-{dead}").mkdir()
    (tmp_path / f".abc123.tmp-{os.getpid()}").mkdir()  # a live process's: kept
    (tmp_path / "abc123").mkdir()
    remove_dead_process_folders(tmp_path, ".abc123.tmp-")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".abc123.tmp-{os.getpid()}", "abc123"]


def test_tfmot_wrappers_trace_without_autograph():
    """mobilekit.backend marks tfmot's pruning and QAT wrappers' ``call`` do-not-convert when tfmot loads (a
    quarter off a small build's time, same bytes). That the wrapped models still prune, keep their zeros through
    QAT and convert is what the slow tier's builds check (tests/test_zoo_int8.py, tests/test_build_e2e.py)."""
    from mobilekit.backend import tfmot
    from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer, quantize_wrapper
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

    assert tfmot.sparsity is not None  # loads tfmot through the proxy
    for cls in (pruning_wrapper.PruneLowMagnitude, quantize_wrapper.QuantizeWrapper,
                quantize_wrapper.QuantizeWrapperV2, quantize_layer.QuantizeLayer):
        assert getattr(cls.call, "__mobilekit_unconverted__", False), cls
