"""Datasets: Fashion-MNIST from its offline copies, or a folder of images.

Images are bilinearly resized to the model input (``tf.image.resize``, half-pixel
centres, no antialiasing), rounded to uint8 as a phone's bitmap scaler would,
and expanded to the model's channel count. The model then sees
``float_input = uint8_pixel * scale + offset`` (see ``PREPROCESSING``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mobilekit.backend import tf
from mobilekit.errors import MobilekitError

FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist", "~/.keras/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")  # what TensorFlow decodes; any case
# A decoded image's pixel budget, checked from the file's header before decoding (PIL's own MAX_IMAGE_PIXELS,
# ~89 megapixels: 270 MB of RGB; larger phone photos are rare, decompression bombs are not).
MAX_IMAGE_PIXELS = 89_478_485
# EXIF orientation (tag 0x0112) -> the numpy transform that shows the photo as a gallery does (PIL's
# ImageOps.exif_transpose): 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse,
# 8 rotate 90 counter-clockwise.
EXIF_ORIENTATION = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1)}
# float_input = uint8_pixel * SCALE + OFFSET: inputs in [0, 1], which an int8
# input with scale 1/255 and zero point -128 represents exactly (q = pixel - 128).
SCALE = 1.0 / 255.0
OFFSET = 0.0
# How ``resize_uint8`` (and so every app) must treat a decoded image, as report.json states it.
RESIZE_CONVENTIONS = {
    "channel_order": "RGB (8 bits per channel, alpha dropped)",
    "grey": "a grey image becomes three identical channels (R = G = B)",
    "aspect_ratio": "stretched to the size: no crop, aspect ratio not kept",
    "pixel_centers": "half-pixel: src = (dst + 0.5) * in_size / out_size - 0.5, clamped to the edge "
                     "(TensorFlow resize, half_pixel_centers=True, align_corners=False)",
    "antialias": False,
    "rounding": "round half to even, clamp to [0, 255]: resized pixels are uint8",
    "orientation": "a photo's EXIF orientation is applied first, as a gallery shows it (Android: read it with "
                   "ExifInterface and rotate or mirror the bitmap before resizing)",
}


INPUT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}  # a quantized input's clamp


def input_table(scale: float, offset: float, input_scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """The ``dtype`` input for each uint8 pixel value 0..255, computed in float32 as the app must:
    ``clamp(round_half_even((pixel * scale + offset) / input_scale + zero_point), low, high)``."""
    f = np.arange(256, dtype=np.float32) * np.float32(scale) + np.float32(offset)
    q = np.round(f / np.float32(input_scale) + np.float32(zero_point))
    return np.clip(q, *INPUT_RANGES[dtype]).astype(np.int32)


def is_plain_pixel(scale: float, offset: float, input_scale: float, zero_point: int, dtype: str = "int8") -> bool:
    """Whether the ``dtype`` input is exactly the pixel moved into its range for every pixel value: ``pixel - 128``
    (int8), the pixel itself (uint8). No arithmetic on the phone then."""
    shift = INPUT_RANGES[dtype][0]
    return bool(np.array_equal(input_table(scale, offset, input_scale, zero_point, dtype), np.arange(256) + shift))


@dataclass
class Dataset:
    """Train and test images as uint8 NHWC at the model's size, with labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    extra: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def preprocessing(self) -> dict:
        """How an app turns a camera/bitmap pixel into the model's float input, every convention stated."""
        if "preprocessing" in self.extra:
            return dict(self.extra["preprocessing"])
        h, w, c = self.input_shape
        return {"size": [h, w], "channels": c, "scale": SCALE, "offset": OFFSET,
                "resize": "bilinear", "layout": "NHWC", **RESIZE_CONVENTIONS,
                "grey_source": self.name == "fashion-mnist",
                "formula": "float_input = uint8_pixel * scale + offset after a bilinear resize"}


def rows(x, y, order, chunk: int = 1024):
    """A tf.data dataset of the examples ``order`` names, in that order, one at a time (read a chunk at a time: a
    data-parallel worker's share of the training set, mobilekit.pipeline.parallel)."""
    from mobilekit.backend import tf

    order = np.asarray(order, dtype=np.int64)

    def chunks():
        for i in range(0, len(order), chunk):
            idx = order[i:i + chunk]
            yield x[idx], y[idx]

    signature = tuple(tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in (x, y))
    return tf.data.Dataset.from_generator(chunks, output_signature=signature).unbatch()


def to_float(x_uint8) -> np.ndarray:
    """The model's float input for uint8 pixels (``PREPROCESSING``)."""
    return np.asarray(x_uint8, np.float32) * np.float32(SCALE) + np.float32(OFFSET)


def resize_uint8(images: np.ndarray, size, channels: int = 3, batch: int = 4096) -> np.ndarray:
    """Bilinear resize of uint8 NHWC images to ``size`` x ``size`` (or a (height, width) pair), rounded back to
    uint8."""
    from mobilekit.settings import size_hw

    hw = size_hw(size)
    out = np.empty((len(images), *hw, images.shape[-1]), np.uint8)
    for start in range(0, len(images), batch):
        chunk = tf.image.resize(images[start:start + batch], hw, method="bilinear")
        out[start:start + batch] = np.clip(np.round(chunk.numpy()), 0, 255).astype(np.uint8)
    if out.shape[-1] == 1 and channels == 3:
        out = np.repeat(out, 3, axis=-1)
    return out


def _read_idx(path: Path, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def find_fashion_mnist() -> Path | None:
    """The first folder holding all four Fashion-MNIST files, or None."""
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    for d in FASHION_MNIST_DIRS:
        p = Path(os.path.expanduser(d))
        if all((p / n).is_file() for n in names):
            return p
    return None


def _fashion_mnist_raw() -> dict:
    """Fashion-MNIST's four files decoded: 28x28x1 uint8 images and int64 labels of each split, and the folder."""
    root = find_fashion_mnist()
    if root is None:
        raise MobilekitError("Fashion-MNIST not found in " + " or ".join(FASHION_MNIST_DIRS)
                             + "; install it with `apt-get install dataset-fashion-mnist`")
    raw = {"source": str(root)}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        raw[f"x_{split}"] = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
        raw[f"y_{split}"] = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return raw


def _fashion_mnist_dataset(raw: dict, size: int, channels: int, limit_train: int | None,
                           limit_test: int | None) -> Dataset:
    parts = {}
    for split, limit in (("train", limit_train), ("test", limit_test)):
        images, labels = raw[f"x_{split}"], raw[f"y_{split}"]
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        parts[split] = (resize_uint8(images, size, channels), labels)
    return Dataset("fashion-mnist", *parts["train"], *parts["test"],
                   class_names=list(FASHION_MNIST_CLASSES), source=raw["source"])


def load_fashion_mnist(size: int = 64, channels: int = 3, limit_train: int | None = None,
                       limit_test: int | None = None) -> Dataset:
    """Fashion-MNIST (60,000 train, 10,000 test) resized to ``size`` x ``size`` x ``channels``.

    Example: ``ds = load_fashion_mnist(size=64)``.

    Args:
        size: output height and width.
        channels: 1 or 3 (grey repeated).
        limit_train, limit_test: keep only the first N images of each split.

    Raises:
        MobilekitError: the data is not installed anywhere it is looked for.
    """
    return _fashion_mnist_dataset(_fashion_mnist_raw(), size, channels, limit_train, limit_test)


def check_class_name(name: str, folder: Path) -> str:
    """A class folder's name as a label: one line of printable text (labels.txt has one line per class)."""
    bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]
    if bad or not name.strip():
        raise MobilekitError(f"class folder name {str(folder)!r} contains a control or line-break character "
                             f"({', '.join(dict.fromkeys(f'U+{ord(c):04X}' for c in bad)) or 'blank name'}); "
                             "rename it: labels.txt needs one line per class")
    return name


def _class_folders(root: Path) -> tuple[list[tuple[str, list[Path]]], list[str]]:
    """([(class name, image files)] of every visible sub-folder, [one line per thing left out]): hidden folders and
    files (``.ipynb_checkpoints``, ``.DS_Store``, macOS ``._`` files) are skipped, files of formats the kit does not
    read are counted by extension."""
    classes, hidden, others = [], [], {}
    for sub in sorted(root.iterdir()):
        if not sub.is_dir():
            continue
        if sub.name.startswith("."):
            hidden.append(sub.name)
            continue
        check_class_name(sub.name, sub)
        files = []
        for f in sorted(sub.iterdir()):
            if f.name.startswith(".") or not f.is_file():
                continue
            ext = f.suffix.lower() or "(no extension)"
            if ext in IMAGE_EXTENSIONS:
                files.append(f)
            else:
                others[ext] = others.get(ext, 0) + 1
        classes.append((sub.name, files))
    notes = []
    if hidden:
        notes.append(f"hidden folders in {root} are not classes and were skipped: {', '.join(hidden)}")
    if others:
        counts = ", ".join(f"{n} {ext}" for ext, n in sorted(others.items()))
        notes.append(f"files in {root} that are not {'/'.join(IMAGE_EXTENSIONS)} images were skipped: {counts}")
    return classes, notes


def decode_image(path: Path, size, channels: int) -> tuple[np.ndarray, bytes]:
    """(the image resized to ``size``, a side or a (height, width) pair; the sha256 of the file's bytes): its
    header read first (a pixel count over MAX_IMAGE_PIXELS is refused before decoding), its EXIF orientation applied
    as a gallery shows the photo."""
    content = path.read_bytes()
    orientation = image_header(path, content)[2]
    try:
        image = tf.io.decode_image(content, channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MobilekitError(f"unreadable image {path}: {reason}") from None
    pixels = image.numpy()
    if orientation in EXIF_ORIENTATION:
        pixels = np.ascontiguousarray(EXIF_ORIENTATION[orientation](pixels))
    return resize_uint8(pixels[None], size, channels)[0], hashlib.sha256(content).digest()


def image_header(path: Path, content: bytes | None = None) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) of an image as stored, from its header alone (``content``: the file's bytes
    when already read); orientation 1 when it has none or its EXIF block is damaged.

    Raises:
        MobilekitError: an image of more than MAX_IMAGE_PIXELS pixels, or a file whose header is not an image's.
    """
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's DecompressionBombWarning: the limit below is the kit's
            with Image.open(io.BytesIO(content) if content is not None else path) as im:  # nothing decoded
                width, height = im.size
                exif = im.info.get("exif")
    except Image.DecompressionBombError:
        raise MobilekitError(f"image {path} has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels; not decoded") \
            from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise MobilekitError(f"unreadable image {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None
    if width * height > MAX_IMAGE_PIXELS:
        raise MobilekitError(f"image {path} is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} the kit "
                             "decodes; resize it first")
    if not exif:
        return width, height, 1
    try:
        tags = Image.Exif()
        tags.load(exif)
        orientation = tags.get(0x0112, 1)
    except Exception:  # a damaged EXIF block: the photo as stored (PIL raises many types here)
        return width, height, 1
    return width, height, orientation if isinstance(orientation, int) else 1


def scan_image_folder(path: str | os.PathLike, hold_out: bool = True, notes: list | None = None
                      ) -> list[tuple[str, list[Path]]]:
    """[(class name, image files)] of ``path``, checked without decoding anything; ``notes`` (a list) receives
    one line per thing skipped (hidden folders, files of other formats).

    Args:
        hold_out: a test share is split off each class, so each needs two images (else one).

    Raises:
        MobilekitError: missing or empty folder, a single class, a class folder with no image the kit reads, two
            class names that are one name in another Unicode form, or a class with fewer than two images (one
            must be held out for testing).
    """
    if not str(path).strip():
        raise MobilekitError("data folder must be named; received ''")
    root = Path(path)
    if not root.exists():
        raise MobilekitError(f"data folder not found: {path}")
    if not root.is_dir():
        raise MobilekitError(f"data path is not a folder: {path}")
    classes, skipped = _class_folders(root)
    if notes is not None:
        notes.extend(skipped)
    if not any(files for _, files in classes):
        raise MobilekitError(f"no images found in {path}: expected one sub-folder per class "
                             f"holding {'/'.join(IMAGE_EXTENSIONS)} files")
    for name, files in classes:
        if not files:
            raise MobilekitError(f"class folder {root / name} has no {'/'.join(IMAGE_EXTENSIONS)} image; add images "
                                 "or remove the folder (it would silently not be a class)")
    seen: dict[str, str] = {}
    for name, _ in classes:
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            raise MobilekitError(f"class folders {seen[key]!r} and {name!r} in {path} are one name in two Unicode "
                                 "forms (NFC and NFD); rename or merge them")
        seen[key] = name
    if len(classes) < 2:
        raise MobilekitError(f"data folder {path} has only one class ({classes[0][0]!r}); "
                             f"a classifier needs at least 2")
    if hold_out:
        for name, files in classes:
            if len(files) < 2:
                raise MobilekitError(f"class folder {root / name} has {len(files)} image; "
                                     f"at least 2 are needed to hold one out for testing")
    return classes


def check_test_folder(path: str | os.PathLike, class_names: list[str], data: str | os.PathLike | None = None,
                      notes: list | None = None) -> list[tuple[str, list[Path]]]:
    """``--test-data``: a folder scanned like the data's, whose classes must be the same (same names, compared in
    one Unicode form), and neither ``data`` itself nor inside it (nor holding it).

    Raises:
        MobilekitError: naming the classes one folder has and the other lacks, or the overlap.
    """
    if data is not None and str(path).strip() and Path(path).is_dir() and Path(data).is_dir():
        test, train = Path(os.path.realpath(path)), Path(os.path.realpath(data))
        if test == train or train in test.parents or test in train.parents:
            raise MobilekitError(f"test data folder {str(path)!r} {'is' if test == train else 'overlaps'} the data "
                                 f"folder {str(data)!r}: its accuracy would be measured on training images; give a "
                                 "separate held-out folder (or leave --test-data out to hold out 20%)")
    classes = scan_image_folder(path, hold_out=False, notes=notes)
    names = [unicodedata.normalize("NFC", name) for name, _ in classes]
    wanted = [unicodedata.normalize("NFC", name) for name in class_names]
    if names != wanted:
        only_test = sorted(set(names) - set(wanted))
        only_train = sorted(set(wanted) - set(names))
        raise MobilekitError(f"test data folder {str(path)!r} has other classes than the data: "
                             + "; ".join(part for part in (
                                 f"only in the test folder: {', '.join(map(repr, only_test))}" if only_test else "",
                                 f"missing from it: {', '.join(map(repr, only_train))}" if only_train else "")
                                 if part))
    return classes


def load_image_folder(path: str | os.PathLike, size: int = 64, channels: int = 3,
                      test_fraction: float = 0.2, seed: int = 0, limit_train: int | None = None,
                      limit_test: int | None = None, test_path: str | os.PathLike | None = None) -> Dataset:
    """Images in ``path/<class>/*.{png,jpg,...}``, split per class into train and test.

    Example: ``ds = load_image_folder("flowers/", size=96)``.

    Args:
        path: a folder with one sub-folder per class (at least two classes).
        size: output height and width (bilinear resize, aspect ratio not kept).
        channels: 3 (RGB; grey images are expanded) or 1.
        test_fraction: share of each class held out for the test set.
        seed: seed of the per-class shuffle before the split (and of the limits' choice).
        limit_train, limit_test: keep a seeded random N of each split (chosen before decoding).
        test_path: a held-out folder with the same classes; then all of ``path`` trains.

    Raises:
        MobilekitError: missing or empty folder, a single class, a class with
            fewer than two images, or an unreadable image (named).
    """
    if not 0.0 < test_fraction < 1.0:
        raise MobilekitError(f"test_fraction must be in (0, 1); received {test_fraction!r}")
    notes: list[str] = []
    classes = scan_image_folder(path, hold_out=test_path is None, notes=notes)
    rng = np.random.default_rng(seed)
    chosen = {"train": [], "test": []}  # (file, label) per split, before any decoding
    if test_path is not None:
        tests = check_test_folder(test_path, [name for name, _ in classes], path, notes)
        for label, ((_, files), (_, test_files)) in enumerate(zip(classes, tests)):
            chosen["train"] += [(f, label) for f in files]
            chosen["test"] += [(f, label) for f in test_files]
    for label, (name, files) in enumerate(classes if test_path is None else ()):
        order = rng.permutation(len(files))
        n_test = min(len(files) - 1, max(1, int(round(len(files) * test_fraction))))
        for rank, idx in enumerate(order):
            chosen["test" if rank < n_test else "train"].append((files[idx], label))
    for split, limit in (("train", limit_train), ("test", limit_test)):
        if limit is not None and limit < len(chosen[split]):
            keep = np.sort(rng.choice(len(chosen[split]), limit, replace=False))
            chosen[split] = [chosen[split][i] for i in keep]
    arrays, digests = [], {}
    for split in ("train", "test"):
        decoded = [decode_image(f, size, channels) for f, _ in chosen[split]]
        digests[split] = [digest for _, digest in decoded]
        arrays += [np.stack([image for image, _ in decoded]),
                   np.array([label for _, label in chosen[split]], np.int64)]
    train_digests = set(digests["train"])
    repeated = sum(d in train_digests for d in digests["test"])
    if repeated:
        notes.append(f"{repeated} of the {len(digests['test'])} test images are byte-identical to training images: "
                     "the test accuracy is measured partly on training data")
    root = Path(path)
    extra = {"test_source": str(test_path)} if test_path is not None else {}
    if notes:
        extra["warnings"] = notes
    return Dataset(root.name, *arrays, class_names=[name for name, _ in classes], source=str(root), extra=extra)


def load(data: str | None, size: int = 64, channels: int = 3, seed: int = 0, test_data: str | None = None,
         **kw) -> Dataset:
    """Fashion-MNIST when ``data`` is None or "fashion-mnist", else an image folder (``test_data``: its
    held-out folder)."""
    if data is None or data == "fashion-mnist":
        return load_fashion_mnist(size, channels, **kw)
    return load_image_folder(data, size, channels, seed=seed, test_path=test_data, **kw)


@dataclass
class DataSource:
    """A build's data held in memory, to go where its files are not (a Ray worker, through the object store).

    Fashion-MNIST travels as its decoded 28x28 uint8 arrays; an image folder as its image files' bytes (a phone
    photo is ~10x bigger decoded, and the size a point trains at is only known on the worker). ``dataset`` makes
    the same Dataset ``load`` makes from the files (same code after the read, same bytes), and names the data as
    the driver named it (``data``, ``test_data``: labels only, never opened).
    """

    data: str | None
    test_data: str | None = None
    arrays: dict | None = None  # Fashion-MNIST: x_train, y_train, x_test, y_test, source
    folders: dict | None = None  # image folder: {"data"/"test": [(class, [(file name, bytes)])]}
    trees: dict | None = None  # a detection folder: {"data"/"test": [(relative path, bytes)]}

    @classmethod
    def snapshot(cls, data: str | None, test_data: str | None = None) -> "DataSource":
        """Read ``data`` (and ``test_data``) into memory, checked as ``load`` checks them (a detector's folders:
        mobilekit.tasks.detection.detection_source)."""
        if data is None or data == "fashion-mnist":
            return cls(data, None, arrays=_fashion_mnist_raw())
        classes = scan_image_folder(data, hold_out=test_data is None)
        folders = {"data": classes}
        if test_data is not None:
            folders["test"] = check_test_folder(test_data, [name for name, _ in classes], data)
        return cls(data, test_data, folders={split: [(name, [(f.name, f.read_bytes()) for f in files])
                                                     for name, files in classes]
                                             for split, classes in folders.items()})

    @property
    def nbytes(self) -> int:
        if self.arrays is not None:
            return sum(v.nbytes for v in self.arrays.values() if isinstance(v, np.ndarray))
        if self.trees is not None:
            return sum(len(b) for files in self.trees.values() for _, b in files)
        return sum(len(b) for classes in self.folders.values() for _, files in classes for _, b in files)

    def write_trees(self, root: Path) -> tuple[Path, Path | None]:
        """A detection source's folders written under ``root`` as they lay: (the data's, the test data's or None)."""
        out = {}
        for split, files in self.trees.items():
            out[split] = Path(root) / split
            for rel, content in files:
                path = out[split] / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
        return out["data"], out.get("test")

    def dataset(self, size: int = 64, channels: int = 3, seed: int = 0, **kw) -> Dataset:
        """What ``load(self.data, size, channels, seed, self.test_data, **kw)`` returns on the machine with the
        files."""
        if self.arrays is not None:
            return _fashion_mnist_dataset(self.arrays, size, channels, kw.get("limit_train"), kw.get("limit_test"))
        import tempfile

        with tempfile.TemporaryDirectory(prefix="mobilekit-data-") as tmp:
            roots = {}
            for split, classes in self.folders.items():
                roots[split] = Path(tmp) / split
                for name, files in classes:
                    (roots[split] / name).mkdir(parents=True)
                    for file_name, content in files:
                        (roots[split] / name / file_name).write_bytes(content)
            ds = load_image_folder(roots["data"], size, channels, seed=seed, test_path=roots.get("test"), **kw)
        ds.name, ds.source = Path(self.data).name, str(Path(self.data))
        if self.test_data is not None:
            ds.extra["test_source"] = str(self.test_data)
        return ds


def write_image_folder(root: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                       class_names: list[str]) -> Path:
    """Write uint8 NHWC ``images`` as ``root/<class>/<index>.png`` (one sub-folder per class, "/" in a class name
    written as "_"): the layout ``--data`` reads. Returns ``root``."""
    root = Path(root)
    folders = [root / name.replace("/", "_") for name in class_names]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        image = image if image.ndim == 3 else image[..., None]
        (folders[int(label)] / f"{i:06d}.png").write_bytes(tf.io.encode_png(image).numpy())
    return root


def fashion_mnist_folder(root: str | os.PathLike, per_class: int, split: str = "train", seed: int = 0) -> Path:
    """A seeded ``per_class`` Fashion-MNIST images of each class (28x28 grey PNGs) written as an image folder: a
    stand-in for a user's small folder of photos (no colour data set is reachable offline)."""
    ds = load_fashion_mnist(28, 1)
    x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                                   for c in range(len(ds.class_names))]))
    return write_image_folder(root, x[keep], y[keep], ds.class_names)
