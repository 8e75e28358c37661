"""Port torchvision's MobileNetV2 ImageNet checkpoint to Keras weights (no PyTorch needed).

Usage: .venv/bin/python converters/export_mobilenet_v2_weights.py [OUT.h5] [--check]

Writes the weights of ``mobilekit.create("mobilenet_v2", padding="symmetric",
bn_epsilon=1e-5, normalization=TORCH_IMAGENET_NORMALIZATION, dropout=0.2)``
(the model ``mobilekit.weights.imagenet_mobilenet_v2()`` returns, input pixel / 255)
to OUT.h5 (default: mobilenet_v2_imagenet.h5); ``--check`` prints the top-1 class of
scikit-image's photos. The porter itself is ``mobilekit/weights/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", default="mobilenet_v2_imagenet.h5")
    p.add_argument("--check", action="store_true", help="classify scikit-image's photos")
    args = p.parse_args(argv)

    from mobilekit.weights import imagenet_mobilenet_v2
    from mobilekit.errors import MobilekitError

    try:
        model = imagenet_mobilenet_v2()
    except MobilekitError as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    out = Path(args.out)
    fd, tmp = tempfile.mkstemp(suffix=".h5", dir=out.parent if str(out.parent) else ".")
    os.close(fd)
    try:
        model.save_weights(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, {model.count_params():,} values)")
    if args.check:
        from mobilekit.photos import load_photos
        from mobilekit.photos import imagenet_class_names

        names, images = load_photos(224)
        classes = imagenet_class_names()
        for name, probs in zip(names, model.predict(images / 255.0, verbose=0)):
            print(f"{name:22s} {classes[probs.argmax()]} ({probs.argmax()}, p={probs.max():.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
