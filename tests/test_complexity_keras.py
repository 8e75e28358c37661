"""Complexity analysis and `mobilekit info`: hand-computed graph, CLI output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mobilekit
from mobilekit.backend import keras
from mobilekit.complexity import complexity, peak_activation_elements, weight_bytes

MOBILEKIT = str(Path(sys.executable).with_name("mobilekit"))


def test_peak_activation_and_weight_bytes_of_a_hand_computed_graph():
    inp = keras.layers.Input((4, 4, 2))                          # 32 elements
    a = keras.layers.Conv2D(4, 1)(inp)                           # 64
    b = keras.layers.Conv2D(4, 1)(inp)                           # 64, last read of the input
    c = keras.layers.Concatenate()([a, b])                       # 128: a + b + c live = 256
    d = keras.layers.GlobalAveragePooling2D()(c)                 # 8
    model = keras.Model(inp, d)
    assert peak_activation_elements(model) == 256
    # Two 1x1 convs 2->4: kernels 8 each, 4 biases each (int32 beside int8 kernels).
    assert weight_bytes(model) == {"float32": 2 * 4 * (8 + 4), "int8": 2 * (8 + 4 * 4)}
    assert complexity(model)["macs"] == 2 * 16 * 8


@pytest.mark.slow  # tens of seconds; the README's `info --arch squeezenet1_0 --json` is the full run's
@pytest.mark.extended
def test_info_json_for_a_knob_variant():
    result = subprocess.run([MOBILEKIT, "info", "--arch", "shufflenet_v1", "--groups", "8",
                             "--scale", "0.5", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    model = mobilekit.create("shufflenet_v1", groups=8, scale=0.5)
    assert info["metaparameters"] == {"groups": 8, "scale": 0.5}
    assert info["params"] == model.count_params() and info["macs"] == complexity(model)["macs"]
    assert info["peak_activation_bytes"]["float32"] == 4 * info["peak_activation_bytes"]["int8"] > 0
    assert len(info["layers"]) == len(model.layers)


def test_info_rejects_a_knob_the_arch_does_not_take():
    result = subprocess.run([MOBILEKIT, "info", "--arch", "shufflenet_v1", "--alpha", "0.5"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mobilekit info: error: shufflenet_v1 has no metaparameter 'alpha'; it takes: ")
    assert "groups" in last and "scale" in last


def test_peak_activations_count_every_output_of_a_split():
    from mobilekit.layers import ChannelSplit

    inputs = keras.Input((4, 4, 8))
    left, right = ChannelSplit(2, name="split")(inputs)
    model = keras.Model(inputs, keras.layers.Concatenate()([right, left]))
    # Peak: the input and both halves while the split runs (the halves as one 128-element
    # output, not one 64-element half).
    assert peak_activation_elements(model) == 2 * 4 * 4 * 8
