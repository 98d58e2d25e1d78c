"""The executor registry: a ``{"type": ...}`` settings dict in, one of our executors out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..stores.base import copy_spec
from .executors import AppProcessPoolExecutor, AppThreadPoolExecutor

if TYPE_CHECKING:
    from apscheduler.executors.base import BaseExecutor

_EXECUTORS: dict[str, type[BaseExecutor]] = {
    "threadpool": AppThreadPoolExecutor,
    "processpool": AppProcessPoolExecutor,
}
_EXECUTOR_ALIASES = {"thread": "threadpool", "process": "processpool"}
EXECUTOR_TYPES: tuple[str, ...] = (*_EXECUTORS, *_EXECUTOR_ALIASES)


def build_executor(alias: str, spec: Mapping[str, Any] | BaseExecutor) -> BaseExecutor:
    """Return the executor that ``spec`` (an executor or a ``{"type": ...}`` dict) describes.

    :raises ConfigError: bad spec; the message starts with ``SCHEDULER_EXECUTORS['<alias>']: ``.
    """
    from apscheduler.executors.base import BaseExecutor

    where = f"SCHEDULER_EXECUTORS[{alias!r}]"
    if isinstance(spec, BaseExecutor):
        return spec
    if not isinstance(spec, Mapping):
        kind = type(spec).__name__
        raise ConfigError(f"{where}: expected a {{'type': ...}} dict, got a {kind}")
    options = copy_spec(where, spec, EXECUTOR_TYPES)
    type_ = options.pop("type", None)
    if type_ not in EXECUTOR_TYPES:
        given = "no type" if type_ is None else f"unknown type {type_!r}"
        raise ConfigError(f"{where}: {given}; known types: {', '.join(EXECUTOR_TYPES)}")
    type_ = _EXECUTOR_ALIASES.get(type_, type_)
    assert type_ is not None  # one of EXECUTOR_TYPES, checked above
    workers = options.get("max_workers", 1)
    if type(workers) is not int or workers < 1:
        raise ConfigError(f"{where}: max_workers must be a positive integer, got {workers!r}")
    try:
        return _EXECUTORS[type_](**options)
    except Exception as exc:
        raise ConfigError(f"{where}: invalid option for the {type_} executor: {exc}") from None
