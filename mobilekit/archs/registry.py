"""The architecture registry: builders stored by name (``@register``), created with ``create()``.

A leaf: the family modules import ``register`` from here, and ``mobilekit.archs`` imports the
families (which fills the registry) and re-exports these functions.
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Callable

from mobilekit.errors import MobilekitError

_REGISTRY: dict[str, Callable] = {}
_ALIASES: dict[str, str] = {}
_TASKS: dict[str, str] = {}  # arch -> its task (mobilekit.tasks), for the archs that are not classifiers


def register(fn: Callable = None, *, aliases: tuple[str, ...] = (), task: str = "classification"):
    """Decorator storing a builder under its function name (and aliases), with the task its model does."""

    def wrap(f):
        _REGISTRY[f.__name__] = f
        if task != "classification":
            _TASKS[f.__name__] = task
        for alias in aliases:
            _ALIASES[alias] = f.__name__
        return f

    return wrap(fn) if fn is not None else wrap


def list_archs(pattern: str | None = None, task: str | None = "classification") -> list[str]:
    """Sorted registered arch names of ``task`` (None: every task), optionally filtered by a glob pattern.

    Example: ``list_archs("squeezenet*")``, ``list_archs(task="detection")``.
    """
    names = sorted(_REGISTRY)
    return [n for n in names if (pattern is None or fnmatch.fnmatch(n, pattern))
            and (task is None or _TASKS.get(n, "classification") == task)]


def resolve(name: str) -> str:
    """The canonical registry name for ``name`` (aliases resolved).

    Raises:
        MobilekitError: ``name`` is not registered; the message lists valid names.
    """
    name = _ALIASES.get(name, name)
    if name not in _REGISTRY:
        valid = ", ".join(list_archs() + sorted(_ALIASES))
        raise MobilekitError(f"unknown arch {name!r}; valid archs: {valid}")
    return name


def task_of(name: str) -> str:
    """The task (``mobilekit.tasks``) of a registered arch or alias: ``classification`` unless it registered
    another."""
    return _TASKS.get(resolve(name), "classification")


def check_kwargs(name: str, kwargs) -> None:
    """Reject keywords the builder of ``name`` does not take, naming the first one.

    Raises:
        MobilekitError: e.g. "shufflenet_v1 has no metaparameter 'alpha'; it takes: ...".
    """
    name = resolve(name)
    accepted = inspect.signature(_REGISTRY[name]).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise MobilekitError(f"{name} has no metaparameter {unknown[0]!r}; it takes: "
                             + ", ".join(accepted))


def create(name: str, **kwargs):
    """Build the Keras model registered as ``name``.

    Example: ``create("squeezenet1_1", input_shape=(64, 64, 3), classes=10)``.

    Raises:
        MobilekitError: unknown ``name``, an unknown keyword or an invalid metaparameter.
    """
    check_kwargs(name, kwargs)
    try:
        return _REGISTRY[resolve(name)](**kwargs)
    except ValueError as e:  # Keras refusing a layer the metaparameters made (e.g. zero filters)
        knobs = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in NOT_KNOBS) or "its defaults"
        raise MobilekitError(f"{resolve(name)} with {knobs} makes an invalid layer: "
                             f"{str(e).strip().splitlines()[0][:200]}") from None


def builder(name: str) -> Callable:
    """The builder function registered as ``name`` (aliases resolved)."""
    return _REGISTRY[resolve(name)]


# Builder keywords that are not design knobs: set by the data, the Keras-Applications plumbing or
# tuples (normalization), never swept or given as flags.
NOT_KNOBS = frozenset({"input_shape", "classes", "include_top", "pooling", "classifier_activation", "batch_size",
                       "normalization"})


def _kind(default) -> type:
    return bool if isinstance(default, bool) else int if isinstance(default, int) else \
        float if isinstance(default, float) else str


def knob_types(name: str | None = None) -> dict[str, type]:
    """The design metaparameters of ``name``'s builder (or of every builder) and their types, read from
    the signatures' defaults (``None`` defaults are strings, e.g. ``bypass``). The CLI's arch flags and
    explore's knobs both come from here, so a new builder argument is a new flag with no list to edit.

    Example: ``knob_types("squeezenet1_1")["squeeze_ratio"] is float``.
    """
    kinds: dict[str, type] = {}
    for arch in [resolve(name)] if name else list_archs(task=None):
        for key, p in inspect.signature(_REGISTRY[arch]).parameters.items():
            if key in NOT_KNOBS:
                continue
            kind = _kind(p.default)
            # Across families a name may be int in one and float in another: float holds both.
            kinds[key] = float if {kinds.get(key, kind), kind} == {int, float} else kind
    return kinds

