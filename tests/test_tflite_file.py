"""Flatbuffer reading and the int8 checks, on real converted files."""

import numpy as np
import pytest

import mobilekit
from mobilekit.convert import convert_float, convert_int8
from mobilekit.errors import MobilekitError
from mobilekit.optimize import KeepSparsity, prune, quantize_aware, sparsity_masks, strip_pruning
from mobilekit.tflite_file import TfliteFile

pytestmark = pytest.mark.xdist_group("tflite_file")  # one worker builds the module fixture `tiny` for all


@pytest.fixture(scope="module")
def tiny():
    model = mobilekit.create("squeezenet1_1", input_shape=(32, 32, 3), classes=4, batch_norm=True)
    calib = np.random.default_rng(0).random((16, 32, 32, 3), np.float32)
    return model, calib


def test_float_file_is_flagged(tiny):
    model, _ = tiny
    f = TfliteFile(convert_float(model))
    problems = f.float_problems()
    assert any("FLOAT32" in p for p in problems)
    assert f.inputs[0].dtype == "FLOAT32" and f.inputs[0].shape == (1, 32, 32, 3)


def test_ptq_file_is_full_int8_with_batch_one(tiny):
    model, calib = tiny
    f = TfliteFile(convert_int8(model, calib))
    assert f.float_problems() == []
    assert f.inputs[0].shape == (1, 32, 32, 3)
    counts = f.op_counts()
    assert counts["CONV_2D"] == 26 and counts["CONCATENATION"] == 8
    # BatchNormalization folded away: no separate mul/add ops.
    assert not {"MUL", "ADD", "QUANTIZE", "DEQUANTIZE"} & set(counts)
    weights = f.weight_sparsity()
    assert len(weights) == 26 and all(w["dtype"] == "INT8" for w in weights.values())
    # XNNPACK takes the whole graph but the int8 softmax; without it every op runs on its own.
    from mobilekit.bench import delegate_partitions, make_interpreter
    content = f.content
    assert delegate_partitions(make_interpreter(content)) == (1, ["SOFTMAX"])
    partitions, outside = delegate_partitions(make_interpreter(content, use_xnnpack=False))
    assert partitions == 0 and len(outside) == len(f.ops)


@pytest.mark.parametrize("content, message", [
    (b"", "not a TFLite"), (b"GIF89a not a model", "not a TFLite"),
    (b"\x1c\x00\x00\x00TFL3" + b"\xff" * 40, "corrupt"),
])
def test_bad_bytes_raise(content, message):
    with pytest.raises(MobilekitError, match=message):
        TfliteFile(content).tensors


def test_truncated_file_raises(tiny):
    model, _ = tiny
    data = convert_float(model)
    with pytest.raises(MobilekitError):
        f = TfliteFile(data[: len(data) // 3])
        f.tensors, f.ops


@pytest.mark.slow  # tens of seconds; the full run checks per-layer sparsity in the built int8 file (test_build_e2e.py)
@pytest.mark.extended
def test_qat_keeps_pruned_zeros_in_every_layer(tiny):
    """tfmot's PQAT alone let zeros fill back in (conv10: 1% left); KeepSparsity keeps them all."""
    from mobilekit.backend import keras, tfmot

    model, calib = tiny
    rng = np.random.default_rng(1)
    x, y = rng.random((64, 32, 32, 3), np.float32), rng.integers(0, 4, 64)
    pruned = prune(keras.models.clone_model(model), 0.5, end_step=4, frequency=1)
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, batch_size=16, epochs=2, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = strip_pruning(pruned)
    masks = sparsity_masks(stripped)
    assert "fire2_expand1x1" in masks and "fire9_expand3x3" in masks
    qat = quantize_aware(stripped)
    qat.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    qat.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[KeepSparsity(masks)])
    sparsity = {k: v["sparsity"] for k, v in TfliteFile(convert_int8(qat, calib)).weight_sparsity().items()}
    assert len(sparsity) == 26
    assert all(s >= 0.45 for s in sparsity.values()), sparsity
