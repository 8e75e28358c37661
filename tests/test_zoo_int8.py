"""Registry-driven: every arch survives prune -> QAT -> full-int8 conversion and runs in LiteRT.

Each registered architecture (and the knob variants below), at 32x32 with 10 classes, is pruned (50%), stripped, wrapped for
prune-preserving QAT, trained one step, converted with a fixed batch of 1 and checked from the bytes:
no float tensor or op, int8 input/output, and one XNNPACK partition with at most the int8 softmax
left outside.
"""

import numpy as np
import pytest

import mobilekit
from mobilekit.backend import keras, tfmot
from mobilekit.bench import delegate_partitions, make_interpreter
from mobilekit.convert import convert_int8
from mobilekit.optimize import KeepSparsity, prune, quantize_aware, sparsity_masks, strip_pruning
from mobilekit.tflite_file import TfliteFile

pytestmark = pytest.mark.slow
SIZE = 32
# Ops this LiteRT build's XNNPACK leaves outside its partition, by arch, beyond the int8
# softmax (never delegated). Empty since ShuffleNet v1's shortcut pool became a frozen
# depthwise conv (int8 AVERAGE_POOL_2D is not delegated).
OUTSIDE = {}
# Every registered arch at its defaults, plus knobs that change the graph's op pattern:
# SqueezeNet's 1x1-conv bypass, and ShuffleNet v1 without shuffles (g=1) and at its
# narrowest with the most groups.
VARIANTS = [(arch, {}) for arch in mobilekit.list_archs()] + [
    ("squeezenet1_1", {"bypass": "complex"}),
    ("shufflenet_v1", {"groups": 1}),
    ("shufflenet_v1", {"groups": 8, "scale": 0.25}),
]


# The full run (CI) trains and converts fire modules and depthwise separable convs (ShuffleNet v2's split and shuffle
# convert to int8 in the README's `export tflite` command there); the other archs run in the extended tier.
FULL_RUN = {("squeezenet1_1", ()), ("mobilenet_v1", ())}


def _variant(arch: str, kwargs: dict):
    marks = [] if (arch, tuple(kwargs.items())) in FULL_RUN else [pytest.mark.extended]
    return pytest.param(arch, kwargs, marks=marks, id=arch + "".join(f"-{k}={v}" for k, v in kwargs.items()))


@pytest.mark.parametrize("arch, kwargs", [_variant(a, kw) for a, kw in VARIANTS])
def test_arch_survives_prune_qat_int8(arch, kwargs):
    rng = np.random.default_rng(0)
    x = rng.random((32, SIZE, SIZE, 3), np.float32)
    y = rng.integers(0, 10, len(x))
    model = mobilekit.create(arch, input_shape=(SIZE, SIZE, 3), classes=10, **kwargs)
    assert model(x[:2]).shape == (2, 10)

    pruned = prune(model, 0.5, end_step=2, frequency=1)
    # Eager steps: two traced train steps of a pruning-wrapped ShuffleNet cost 78 s of graph
    # building against 6 s eager (measured); graph-mode training is covered by the builds.
    pruned.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    pruned.fit(x, y, batch_size=16, epochs=1, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = strip_pruning(pruned)
    masks = sparsity_masks(stripped)
    qat = quantize_aware(stripped)
    qat.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", run_eagerly=True)
    qat.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[KeepSparsity(masks)])

    content = convert_int8(qat, x[:8])
    f = TfliteFile(content)
    assert f.float_problems() == []
    assert f.inputs[0].shape == (1, SIZE, SIZE, 3)
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(f.op_counts())
    for name, s in f.weight_sparsity().items():
        if s["op"] != "DEPTHWISE_CONV_2D":
            assert s["sparsity"] >= 0.45, (name, s)

    interpreter = make_interpreter(content)
    partitions, outside = delegate_partitions(interpreter)
    allowed = OUTSIDE.get(arch, {"SOFTMAX"})
    assert set(outside) <= allowed, outside
    # Each op left outside splits the graph: one partition more per non-final outside op.
    assert partitions == 1 + sum(op != "SOFTMAX" for op in outside), (partitions, outside)
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], rng.integers(-128, 128, inp["shape"], dtype=np.int8))
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert out.shape == (1, 10) and out.dtype == np.int8
