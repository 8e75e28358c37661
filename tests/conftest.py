import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from mobilekit.data import find_fashion_mnist  # noqa: E402


@pytest.fixture(scope="session")
def fashion_small():
    """1,000 train / 500 test Fashion-MNIST images at 32x32x3 (real data, small)."""
    from mobilekit.data import load_fashion_mnist

    assert find_fashion_mnist() is not None, "Fashion-MNIST missing: run scripts/setup.sh"
    return load_fashion_mnist(size=32, limit_train=1000, limit_test=500)
