"""Data loading: Fashion-MNIST from the Debian package, image folders, bad folders."""

import numpy as np
import pytest

from mobilekit import data
from mobilekit._tf import tf
from mobilekit.errors import MobilekitError


@pytest.mark.needs_data
def test_fashion_mnist_full_test_set():
    ds = data.load_fashion_mnist(size=32, limit_train=10)
    assert ds.x_test.shape == (10_000, 32, 32, 3) and ds.x_test.dtype == np.uint8
    assert np.array_equal(np.bincount(ds.y_test), np.full(10, 1000))  # 1,000 per class
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    # Grey expanded to 3 identical channels; real images use the full pixel range.
    assert np.array_equal(ds.x_test[..., 0], ds.x_test[..., 2])
    assert ds.x_test.max() == 255 and ds.x_test.min() == 0
    assert ds.preprocessing()["size"] == [32, 32]


def test_resize_is_bilinear_and_rounded():
    img = np.array([[0, 255], [255, 0]], np.uint8).reshape(1, 2, 2, 1)
    out = data.resize_uint8(img, 4, channels=1)
    expected = np.clip(np.round(tf.image.resize(img, (4, 4), "bilinear").numpy()), 0, 255)
    assert np.array_equal(out, expected.astype(np.uint8))
    assert out[0, 0, 0, 0] == 0 and 0 < out[0, 1, 1, 0] < 255


def _write_png_folder(root, images, labels, class_names):
    for i, (img, label) in enumerate(zip(images, labels)):
        d = root / class_names[label].replace("/", "-")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:05d}.png").write_bytes(tf.io.encode_png(img).numpy())


@pytest.mark.needs_data
def test_image_folder_from_real_fashion_mnist_pngs(tmp_path, fashion_small):
    raw = data.load_fashion_mnist(size=28, channels=1, limit_train=60, limit_test=1)
    _write_png_folder(tmp_path, raw.x_train, raw.y_train, raw.class_names)
    ds = data.load_image_folder(tmp_path, size=32, test_fraction=0.25, seed=0)
    assert ds.class_names == sorted(c.replace("/", "-") for c in set(np.array(raw.class_names)[raw.y_train]))
    assert len(ds.x_train) + len(ds.x_test) == 60
    assert ds.x_train.shape[1:] == (32, 32, 3) and ds.x_train.dtype == np.uint8
    # Every class is in both splits, and a decoded PNG equals the direct resize of its pixels.
    assert set(ds.y_test) == set(ds.y_train) == set(range(len(ds.class_names)))
    direct = data.resize_uint8(raw.x_train, 32)
    assert any(np.array_equal(ds.x_train[0], d) for d in direct)
    # Same seed, same split.
    again = data.load_image_folder(tmp_path, size=32, test_fraction=0.25, seed=0)
    assert np.array_equal(again.x_test, ds.x_test)


def test_missing_and_file_paths(tmp_path):
    with pytest.raises(MobilekitError, match="data folder not found"):
        data.load_image_folder(tmp_path / "nope")
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    with pytest.raises(MobilekitError, match="not a folder"):
        data.load_image_folder(f)


def test_empty_folder(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "notes.txt").write_text("no images here")
    with pytest.raises(MobilekitError, match="no images found"):
        data.load_image_folder(tmp_path)


def test_single_class(tmp_path):
    img = np.zeros((8, 8, 1), np.uint8)
    _write_png_folder(tmp_path, [img, img], [0, 0], ["cats"])
    with pytest.raises(MobilekitError, match="only one class \\('cats'\\)"):
        data.load_image_folder(tmp_path)


def test_unreadable_image_is_named(tmp_path):
    img = np.zeros((8, 8, 1), np.uint8)
    _write_png_folder(tmp_path, [img, img, img, img], [0, 0, 1, 1], ["cats", "dogs"])
    bad = tmp_path / "dogs" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(MobilekitError, match="unreadable image .*broken.png"):
        data.load_image_folder(tmp_path)


def test_class_with_one_image(tmp_path):
    img = np.zeros((8, 8, 1), np.uint8)
    _write_png_folder(tmp_path, [img, img, img], [0, 0, 1], ["cats", "dogs"])
    with pytest.raises(MobilekitError, match="dogs has 1 image"):
        data.load_image_folder(tmp_path)
