"""Console output (stderr): stage lines and rich progress bars with elapsed time and ETA. No TensorFlow import
(the training bar, a Keras callback, lives in mobilekit.pipeline.training)."""

from __future__ import annotations

import contextlib
import os
import time

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


# Without a terminal (a CI log, a nohup file, a pipe) rich draws no bar until the end: a plain line per task then
# comes every PLAIN_SECONDS instead (MOBILEKIT_PROGRESS_SECONDS sets it).
PLAIN_SECONDS = 30.0


def _plain_seconds() -> float:
    try:
        value = float(os.environ.get("MOBILEKIT_PROGRESS_SECONDS", PLAIN_SECONDS))
    except ValueError:
        return PLAIN_SECONDS
    return value if value > 0 else PLAIN_SECONDS


class _Progress(Progress):
    """rich's Progress; on a console that is not a terminal, also ``  description: done/total info (elapsed)`` for a
    task every PLAIN_SECONDS while it runs."""

    def __init__(self, *columns, **kw):
        super().__init__(*columns, **kw)
        self._plain_every = _plain_seconds()
        self._plain_last: dict = {}

    def update(self, task_id, **kw) -> None:
        super().update(task_id, **kw)
        self._plain(task_id)

    def advance(self, task_id, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._plain(task_id)

    def _plain(self, task_id) -> None:
        if self.console.is_terminal:
            return
        now = time.monotonic()
        task = next(t for t in self.tasks if t.id == task_id)  # rich's public snapshot of its tasks
        last = self._plain_last.setdefault(task_id, task.start_time or now)
        if now - last < self._plain_every:
            return
        self._plain_last[task_id] = now
        done, total, info = int(task.completed), task.total, task.fields.get("info", "")
        elapsed = task.elapsed or 0.0
        of = f"/{int(total)}" if total is not None else ""
        self.console.print(f"  {task.description}: {done}{of}{' ' + info if info else ''} ({elapsed:.0f} s)",
                           markup=False, highlight=False)


def progress() -> Progress:
    return _Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
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
