"""What every task shares: the :class:`Data` a task loads and the :class:`Task` interface the build calls
(see :mod:`mobilekit.tasks`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class Data:
    """The dataset and its float test images (computed once, evaluated by every stage); with an accuracy budget, the
    validation split held out of ``ds``'s training images (float images and their labels)."""

    ds: object  # mobilekit.data.Dataset for classification
    x_test: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


class Task(Protocol):
    """What the build asks of a task (see the module docstring); ``cfg`` is a BuildConfig, ``state`` a
    :class:`mobilekit.pipeline.stages.Trained`."""

    name: str

    def load(self, cfg, console, source=None) -> Data: ...

    def create_model(self, cfg, data: Data | None = None): ...

    def loss(self, cfg, model) -> tuple[object, list, int | None]: ...

    def train_dataset(self, x, y, cfg, seed_offset: int, one_hot: int | None = None, order=None,
                      batch: int | None = None): ...

    def labels(self, y, one_hot: int | None = None): ...

    def keras_metric(self, model, data: Data) -> float: ...

    def evaluate(self, cfg, data: Data, state, int8_bytes: bytes) -> dict: ...

    def check_kept(self, accuracy: dict, data: Data) -> None: ...

    def warnings(self, accuracy: dict, data: Data, evaluated: dict) -> list[str]: ...

    def report_fields(self, data: Data) -> dict: ...

    def app_files(self, data: Data) -> dict[str, tuple[str, bytes]]: ...

    def with_metadata(self, cfg, data: Data, content: bytes, kind: str) -> bytes: ...
