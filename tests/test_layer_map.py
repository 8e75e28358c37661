"""One identity per layer: mobilekit.layer_map names a .tflite's ops and tensors by their Keras layers, once per
file, for numerics, precision, Model Explorer and the build's weight report."""

import numpy as np
import pytest

import mobilekit
from mobilekit.backend import keras
from mobilekit.convert import convert_float, convert_int8
from mobilekit.layer_map import LayerMap, output_key, weight_layer
from mobilekit.model_explorer import build_overlays
from mobilekit.precision import layer_scopes
from mobilekit.tflite_file import TfliteFile

pytestmark = pytest.mark.xdist_group("layer_map")  # one worker builds the module fixture `squeezenet` for all


@pytest.fixture(scope="module")
def squeezenet():
    """An untrained SqueezeNet 1.1 (32x32, 10 classes), its int8 file and its float file."""
    model = mobilekit.create("squeezenet1_1", input_shape=(32, 32, 3), classes=10, batch_norm=True,
                             classifier_relu=False)
    calibration = np.random.default_rng(0).random((16, 32, 32, 3), np.float32)
    return model, convert_int8(model, calibration), convert_float(model)


def test_output_keys_drop_qat_prefixes_and_keep_the_layer():
    assert output_key("squeezenet1_1/quant_conv1_relu/Relu;squeezenet1_1/quant_conv1_bn/FusedBatchNormV3") == \
        "conv1_relu"
    assert output_key("model/fire2_concat/concat") == "fire2_concat"
    assert output_key("Identity") == "Identity"


def test_a_weight_tensor_belongs_to_the_longest_layer_name_among_its_parts():
    names = ["conv10", "conv1", "fire2_squeeze1x1"]
    assert weight_layer("model/quant_conv10/Conv2D", names) == "conv10"
    assert weight_layer("model/conv1/Conv2D;model/conv1/BiasAdd", names) == "conv1"
    assert weight_layer("model/quant_fire2_squeeze1x1/LastValueQuant/FakeQuant", names) == "fire2_squeeze1x1"
    assert weight_layer("model/dense/MatMul", names) == "model/dense/MatMul"  # no layer named: its own name


def test_every_op_output_has_one_key_and_graph_outputs_are_numbered(squeezenet):
    _, int8, _ = squeezenet
    f, layers = TfliteFile(int8), LayerMap.of(int8)
    outputs = [i for op in f.ops for i in op.outputs]
    assert sorted(layers.key_of_tensor) == sorted(outputs)
    assert [layers.key_of_tensor[t.index] for t in f.outputs] == ["output0"]
    assert sum(len(v) for v in layers.tensor_names.values()) == len(outputs)
    assert "fire2_squeeze1x1_relu" in layers.keys and layers.keys.index("conv1_relu") < layers.keys.index("fire9_concat")
    assert LayerMap.of(int8) is layers  # built once per file content


def test_weighted_ops_map_to_the_keras_layer_that_holds_their_weights(squeezenet):
    model, int8, float_file = squeezenet
    names = [layer.name for layer in model.layers]
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    for content in (int8, float_file):
        mapped = LayerMap.of(content).keras_layers(names)
        assert sorted(set(mapped.values())) == sorted(convs)  # 26 convs of SqueezeNet 1.1, each found once
        assert mapped["fire2_squeeze1x1_relu"] == "fire2_squeeze1x1"  # the fused ReLU's output, the conv's weights
    assert len(convs) == 26


def test_the_sparsity_overlay_reaches_every_conv_through_the_layer_map(squeezenet):
    model, int8, _ = squeezenet
    names = [layer.name for layer in model.layers]
    per_layer = {weight_layer(name, names): s for name, s in TfliteFile(int8).weight_sparsity().items()}
    overlay = next(d for d in build_overlays({"sparsity": {"per_layer": per_layer}}, int8)
                   if d["name"] == "weight sparsity")
    f = TfliteFile(int8)
    conv_outputs = {f.tensors[op.outputs[0]].name for op, _ in f.weights()}
    assert set(overlay["results"]) == conv_outputs
    for op, t in f.weights():
        assert overlay["results"][f.tensors[op.outputs[0]].name]["value"] == per_layer[weight_layer(t.name, names)][
            "sparsity"]


def test_precision_scopes_are_the_ops_of_each_layer(squeezenet):
    _, _, float_file = squeezenet
    scopes, f = layer_scopes(float_file), TfliteFile(float_file)
    assert sum(len(v) for v in scopes.values()) == len(f.ops)
    for key, ops in scopes.items():
        for scope, node in ops:
            assert scope.endswith(";") and scope.startswith(node + ";")
            assert LayerMap.of(float_file).key_of_tensor[next(t.index for t in f.tensors if t.name == node)] == key
