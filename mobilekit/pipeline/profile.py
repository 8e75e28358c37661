"""The running stage's throughput record: :class:`mobilekit.pipeline.stages.StageTimer` sets it, and training
(``fit``) and evaluation (a task's ``keras_metric``) add their steps, images and seconds to it."""

from __future__ import annotations

import contextvars

PROFILE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("mobilekit_stage_profile", default=None)


def record(key: str, value: float) -> None:
    """Add ``value`` to the running stage's ``key`` (nothing outside a stage)."""
    profile = PROFILE.get()
    if profile is not None:
        profile[key] = round(profile.get(key, 0) + value, 3)
