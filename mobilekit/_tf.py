"""Lazy, Keras-2-pinned access to TensorFlow, tf_keras and tfmot.

tfmot 0.8 works only with Keras 2 (tf_keras), and importing tfmot flips
``TF_USE_LEGACY_KERAS`` as a side effect, so the variable is set here, once,
before TensorFlow is first imported. The proxies import on first attribute
access, which keeps ``mobilekit --help`` and argument errors fast.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import types

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# 3: TensorFlow's C++ log lines (oneDNN notices, the CUDA probe's "failed call to cuInit" on machines without a
# GPU) stay out of every command's output; export TF_CPP_MIN_LOG_LEVEL=0 to see them. Python errors still raise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide what native code writes to fd 2 (absl/CUDA-stub/converter chatter).

    The text is kept and written back if the block raises, so a real failure
    still shows everything.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # stderr replaced (pytest capture, IDEs)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            sink.seek(0)
            os.write(fd, sink.read())
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


class _LazyModule(types.ModuleType):
    """A module stand-in that imports the real module on first use."""

    def __init__(self, name: str):
        super().__init__(name)
        self._module = None

    def _load(self):
        if self._module is None:
            with quiet_native_stderr():
                self._module = importlib.import_module(self.__name__)
        return self._module

    def __getattr__(self, attr):
        return getattr(self._load(), attr)


tf = _LazyModule("tensorflow")
keras = _LazyModule("tf_keras")
tfmot = _LazyModule("tensorflow_model_optimization")
