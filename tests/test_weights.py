"""The torchvision MobileNetV2 porter: the numpy legacy-pickle reader and the ImageNet model."""

import pickle

import numpy as np
import pytest

import mobilekit
from mobilekit.weights import imagenet_mobilenet_v2, load_state_dict, port_state_dict, torchvision_checkpoint
from mobilekit.weights.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION
from mobilekit.errors import MobilekitError
from mobilekit.photos import EXPECTED_CLASSES, load_photos


@pytest.fixture(scope="module")
def state_dict():
    return load_state_dict(torchvision_checkpoint())


def test_checkpoint_reads_as_torchvision_mobilenet_v2(state_dict):
    assert len(state_dict) == 314  # 52 convs, 52 BNs x 5 entries, linear weight + bias
    assert state_dict["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state_dict["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)
    assert state_dict["classifier.1.weight"].shape == (1000, 1280)
    assert state_dict["features.18.1.num_batches_tracked"].dtype == np.int64
    learned = sum(v.size for k, v in state_dict.items() if not k.endswith(("running_mean", "running_var",
                                                                            "num_batches_tracked")))
    assert learned == 3_504_872  # torchvision's parameter count
    assert all(np.isfinite(v).all() for v in state_dict.values())
    assert (state_dict["features.5.conv.1.1.running_var"] > 0).all()


def _legacy_file(path, obj):
    with open(path, "wb") as f:
        for part in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}, obj, []):
            pickle.dump(part, f, protocol=2)


def test_reader_refuses_code_and_other_formats(tmp_path):
    import os

    evil = tmp_path / "evil.pth"
    _legacy_file(evil, {"x": os.getcwd})  # a callable: pickled as a global reference
    with pytest.raises(MobilekitError, match=r"getcwd is not allowed in a state dict"):
        load_state_dict(evil)
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(MobilekitError, match="zip-format"):
        load_state_dict(zipped)
    with pytest.raises(MobilekitError, match="no such checkpoint"):
        load_state_dict(tmp_path / "missing.pth")


def test_port_rejects_a_different_architecture(state_dict):
    model = mobilekit.create("mobilenet_v2", alpha=0.5, padding="symmetric", bn_epsilon=1e-5)
    with pytest.raises(MobilekitError, match=r"cannot load features\.0\.0 .* into conv1 "):
        port_state_dict(model, state_dict)


@pytest.mark.slow
def test_ported_model_classifies_the_photos():
    model = imagenet_mobilenet_v2()
    assert model.count_params() == 3_538_984
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 3_504_872
    names, images = load_photos(224, tuple(EXPECTED_CLASSES))
    top1 = model.predict(images / 255.0, verbose=0).argmax(axis=1)
    for name, label in zip(names, top1):
        assert label in EXPECTED_CLASSES[name], (name, label)


@pytest.mark.slow
def test_ported_efficientnet_lite0_classifies_the_photos():
    """TensorFlow's Lite0 weights in the lukemelas layout: the tabby lands in the cat classes, the espresso in its."""
    from mobilekit.weights import imagenet_efficientnet_lite0

    model = imagenet_efficientnet_lite0()
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 4_652_008
    names, images = load_photos(224, tuple(EXPECTED_CLASSES))
    top1 = model.predict(images / 255.0, verbose=0).argmax(axis=1)
    for name, label in zip(names, top1):
        assert label in EXPECTED_CLASSES[name], (name, label)
