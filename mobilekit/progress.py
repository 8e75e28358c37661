"""Console output (stderr): stage lines and rich progress bars with elapsed time and ETA. No TensorFlow import
(the training bar, a Keras callback, lives in mobilekit.pipeline.training)."""

from __future__ import annotations

import contextlib

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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


@contextlib.contextmanager
def task(description: str, total: int):
    """A bar for a step of ``total`` parts (elapsed, ETA once a part is done); yields ``advance(info="")``."""
    from rich.errors import LiveError

    bar = progress()
    try:
        bar.start()
    except LiveError:  # an outer bar is live (e.g. explore's screening) and shows the progress
        yield lambda info="": None
        return
    t = bar.add_task(description, total=total, info="")
    try:
        yield lambda info="": bar.update(t, advance=1, info=info)
    except BaseException:
        bar.live.transient = True  # an error's one line is then all that is left on the screen
        raise
    finally:
        bar.stop()
