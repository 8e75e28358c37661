"""Console output: rich progress bars for training and evaluation, stage lines."""

from __future__ import annotations

import contextlib

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mobilekit._tf import keras

console = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def use_console(other: Console):
    """Send stage lines and progress bars to ``other`` inside the block (e.g. a sweep point's log file)."""
    global console
    saved, console = console, other
    try:
        yield other
    finally:
        console = saved


def progress() -> Progress:
    return Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console)


class ProgressCallback(keras.callbacks.Callback):
    """One progress bar over all training steps, showing running loss and accuracy."""

    def __init__(self, description: str, total_steps: int):
        super().__init__()
        self.description = description
        self.total_steps = total_steps
        self._progress = None
        self._task = None

    def on_train_begin(self, logs=None):
        self._progress = progress()
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.total_steps, info="")

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        info = " ".join(f"{k}={v:.3f}" for k, v in logs.items() if k in ("loss", "accuracy"))
        self._progress.update(self._task, advance=1, info=info)

    def on_train_end(self, logs=None):
        self._progress.stop()
