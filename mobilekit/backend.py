"""Lazy, Keras-2-pinned access to TensorFlow, tf_keras and tfmot.

tfmot 0.8 works only with Keras 2 (tf_keras), and importing tfmot flips
``TF_USE_LEGACY_KERAS`` as a side effect, so the variable is set here, once,
before TensorFlow is first imported. The proxies import on first attribute
access, which keeps ``mobilekit --help`` and argument errors fast.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import shutil
import sys
import tempfile
import types

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# 3: TensorFlow's C++ log lines (oneDNN notices, the CUDA probe's "failed call to cuInit" on machines without a
# GPU) stay out of every command's output; export TF_CPP_MIN_LOG_LEVEL=0 to see them. Python errors still raise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _private_tempdir() -> str:
    """This process's temp folder, removed at exit; folders of processes that died (``kill -9``) are swept
    here. TensorFlow's autograph writes a ``__autograph_generated_file*.py`` per traced function to the temp
    folder and deletes them only at a clean exit, so killed builds would otherwise leave them behind."""
    from mobilekit.files import remove_dead_process_folders

    root = os.path.join(tempfile.gettempdir(), f"mobilekit-{os.getuid()}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    remove_dead_process_folders(root, "")  # folders are named <pid>-<random>
    owner = os.getpid()
    path = tempfile.mkdtemp(prefix=f"{owner}-", dir=root)

    def remove():
        if os.getpid() == owner:  # a forked child that exits through atexit leaves its parent's folder alone
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


if tempfile.tempdir is None:
    tempfile.tempdir = _private_tempdir()


# `--verbose` (set_verbose) shows everything the libraries print; by default they are quiet.
VERBOSE = False
_LIBRARY_MODULES = r"(tensorflow|tf_keras|keras|tensorflow_model_optimization|absl|ai_edge_litert)(\.|$)"


def set_verbose(verbose: bool) -> None:
    """Library logs on (``--verbose``) or off (the default): TensorFlow's C++ log level (effective before
    TensorFlow loads), its Python logger, absl, Python warnings from the libraries, native stderr chatter
    (e.g. LiteRT's "Created TensorFlow Lite XNNPACK delegate" line)."""
    global VERBOSE
    VERBOSE = verbose
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    elif tf._module is not None:
        _quiet_python_logs()


def _quiet_python_logs() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", module=_LIBRARY_MODULES)
    for name in ("tensorflow", "absl", "tensorflow_model_optimization", "tf_keras"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide what native code writes to fd 2 (absl/CUDA-stub/converter/LiteRT chatter), unless --verbose.

    The text is kept and written back if the block raises, so a real failure
    still shows everything.
    """
    if VERBOSE:
        yield
        return
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
    """A module stand-in that imports the real module on first use (then calls ``on_load`` with it)."""

    def __init__(self, name: str, on_load=None):
        super().__init__(name)
        self._module = None
        self._on_load = on_load

    def _load(self):
        if self._module is None:
            with quiet_native_stderr():
                module = importlib.import_module(self.__name__)
            if self._on_load is not None:
                self._on_load(module)
            self._module = module
            if not VERBOSE:
                _quiet_python_logs()
        return self._module

    def __getattr__(self, attr):
        return getattr(self._load(), attr)


def _trace_wrappers_without_autograph(_tfmot) -> None:
    """tfmot's pruning and quantization wrappers build their graph with explicit ``tf.cond`` / ``smart_cond``, so
    autograph's rewrite of their ``call`` adds nothing but time: a tiny SqueezeNet 1.1 build's pruning stage took
    18.5 s with it and 13.0 s without, QAT 8.5 s and 6.4 s, and the .tflite was byte-identical (docs/testing.md).
    Python control flow on a tensor would now raise at trace time instead of being converted: a loud failure,
    never a different graph."""
    from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer, quantize_wrapper
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

    for cls in (pruning_wrapper.PruneLowMagnitude, quantize_wrapper.QuantizeWrapper,
                quantize_wrapper.QuantizeWrapperV2, quantize_layer.QuantizeLayer):
        if "call" in cls.__dict__ and not hasattr(cls.__dict__["call"], "__mobilekit_unconverted__"):
            call = tf.autograph.experimental.do_not_convert(cls.__dict__["call"])
            call.__mobilekit_unconverted__ = True
            cls.call = call


tf = _LazyModule("tensorflow")
keras = _LazyModule("tf_keras")
tfmot = _LazyModule("tensorflow_model_optimization", on_load=_trace_wrappers_without_autograph)
