"""Flatbuffer-only analysis: MACs per op, weight bytes, activation lifetimes, peak memory."""

import numpy as np
import pytest

import mobilekit
from mobilekit.backend import keras
from mobilekit.complexity import complexity
from mobilekit.convert import convert_float, convert_int8
from mobilekit.complexity import analyze, lifetimes
from mobilekit.tflite_file import TfliteFile


def _branchy():
    """input 8x8x3 -> conv a (4 ch) and conv b (2 ch, 1x1) -> concat (6 ch)."""
    inputs = keras.Input((8, 8, 3), batch_size=1)
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(2, 1, name="b")(inputs)
    return keras.Model(inputs, keras.layers.Concatenate(name="cat")([a, b]))


def test_hand_computed_small_graph():
    f = TfliteFile(convert_float(_branchy()))
    assert [op.name for op in f.ops] == ["CONV_2D", "CONV_2D", "CONCATENATION"]
    a = analyze(f)
    # MACs: a = 64 positions x 4 filters x 27, b = 64 x 2 x 3.
    assert a["macs"] == 64 * 4 * 27 + 64 * 2 * 3
    # Weights (float32): a 4*27 + 4 bias, b 2*3 + 2 bias.
    assert a["weight_bytes"] == 4 * (4 * 27 + 4 + 2 * 3 + 2)
    # Live elements: step 0 in + a = 192 + 256; step 1 in + a + b = 192 + 256 + 128 (the input's
    # last read); step 2 a + b + cat = 256 + 128 + 384 = 768, the peak.
    assert a["peak_activation"]["bytes"] == 4 * 768 and a["peak_activation"]["op_name"] == "CONCATENATION"
    spans = {lt.bytes // 4: (lt.first, lt.last) for lt in lifetimes(f)}
    assert spans == {192: (-1, 1), 256: (0, 2), 128: (1, 2), 384: (2, 3)}


@pytest.mark.slow  # two 224x224 conversions each (4 s): the full lane (CI) runs it
@pytest.mark.parametrize("arch, peak_int8", [
    # conv1 (3x3/2, 64, ReLU fused) 111x111x64 = 788,544 bytes and pool1 55x55x64 = 193,600, live together.
    ("squeezenet1_1", 111 * 111 * 64 + 55 * 55 * 64),
    # conv_dw_1 output 112x112x32 = 401,408 and conv_pw_1's 112x112x64 = 802,816.
    ("mobilenet_v1", 112 * 112 * 32 + 112 * 112 * 64),
])
def test_full_size_models_at_224(arch, peak_int8):
    model = mobilekit.create(arch)
    x = np.random.default_rng(0).random((2, 224, 224, 3), np.float32)
    f8 = TfliteFile(convert_int8(model, x))
    a = analyze(f8)
    assert a["peak_activation"]["bytes"] == peak_int8
    assert a["macs"] == complexity(model)["macs"]
    # int8 kernels + int32 biases (+ a few small constants) vs the float file's float32 weights
    kernels = sum(row["weight_bytes"] for row in a["ops"])
    assert 0.24 < kernels / analyze(TfliteFile(convert_float(model)))["weight_bytes"] < 0.27


def test_energy_and_targets_by_hand():
    from mobilekit.bench.energy import check_targets, energy_per_frame

    f = TfliteFile(convert_float(_branchy()))
    a = analyze(f)
    e = energy_per_frame(f, a, sram_kb=8)
    # 7,296 fp32 MACs x 4.6 pJ; weights 480 B + activations moved 6,144 B (in 768 read twice, a 1,024
    # written and read, b 512 written and read, cat 1,536 written) = 828 words x 10 pJ (fits 8 KB).
    assert e["memory"] == "SRAM" and e["traffic_bytes"] == {"weights": 480, "activations": 6144}
    assert e["total_mj"][0] == pytest.approx((7296 * 4.6 + 828 * 10) * 1e-9)
    dram = energy_per_frame(f, a, sram_kb=1)  # 3,552 bytes do not fit 1 KB
    assert dram["memory"] == "DRAM" and dram["memory_mj"] == pytest.approx([828 * 1300e-9, 828 * 2600e-9])
    t = check_targets(f, a, median_ms=50.0, sram_kb=1, fps=15, energy_mj=1e-3)
    assert not t["sram"]["ok"] and t["sram"]["footprint_bytes"] == 480 + 3072
    assert t["fps"]["achieved"] == pytest.approx(20.0) and t["fps"]["ok"]
    assert t["energy"]["ok"] == (dram["total_mj"][1] <= 1e-3)
