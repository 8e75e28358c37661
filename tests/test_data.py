"""Data loading: Fashion-MNIST from the Debian package, image folders, bad folders."""

import numpy as np
import pytest

from mobilekit import data
from mobilekit.backend import tf
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


def _same(a: data.Dataset, b: data.Dataset) -> None:
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert getattr(a, name).dtype == getattr(b, name).dtype
    assert (a.name, a.source, a.class_names, a.extra) == (b.name, b.source, b.class_names, b.extra)


@pytest.mark.needs_data
def test_data_in_memory_makes_the_same_dataset_as_the_files(tmp_path):
    """What a sweep's trial gets through Ray's object store (no file to open) loads exactly as the files do."""
    raw = data.load_fashion_mnist(size=28, channels=1, limit_train=40, limit_test=100)
    _write_png_folder(tmp_path / "photos", raw.x_train, raw.y_train, raw.class_names)
    _write_png_folder(tmp_path / "held-out", raw.x_test, raw.y_test, raw.class_names)
    folder = data.DataSource.snapshot(str(tmp_path / "photos"))
    on_disk = sum(f.stat().st_size for f in (tmp_path / "photos").rglob("*.png"))
    assert folder.arrays is None and folder.nbytes == on_disk
    for kw in ({"seed": 0}, {"seed": 3, "limit_train": 10, "limit_test": 5}):
        _same(folder.dataset(24, 3, **kw), data.load(str(tmp_path / "photos"), 24, 3, **kw))
    # A held-out test folder too (both folders' classes must match).
    with_test = data.DataSource.snapshot(str(tmp_path / "photos"), str(tmp_path / "held-out"))
    _same(with_test.dataset(16, 3, seed=1),
          data.load(str(tmp_path / "photos"), 16, 3, seed=1, test_data=str(tmp_path / "held-out")))
    fashion = data.DataSource.snapshot(None)
    assert fashion.folders is None and fashion.arrays["x_train"].shape == (60_000, 28, 28, 1)
    _same(fashion.dataset(20, 3, limit_train=50, limit_test=30), data.load(None, 20, 3, limit_train=50, limit_test=30))
    with pytest.raises(MobilekitError, match="missing"):  # checked where it is read, as `load` checks
        data.DataSource.snapshot(str(tmp_path / "missing"))
