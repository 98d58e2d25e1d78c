"""Argument types of the job functions, and the decorator that checks a call against them.

The types are ``Annotated`` pydantic types, so one declaration serves three readers: the
service, which validates a job's arguments against the annotations when the job is created
(POST, PATCH, declared jobs) and shows them as JSON Schema in ``GET /scheduler/tasks``; and
``checked``, which validates them again when the function runs. Validation is strict: a
value must already have the annotated JSON type (``"5"`` is not a number), because the
function receives the stored value, not a converted one.

This module is private (its name starts with ``_``): nothing in it may be scheduled.
"""

from __future__ import annotations

import functools
import inspect
import os
import typing
import urllib.parse
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError

from ._limits import JobLimits

F = TypeVar("F", bound=Callable[..., Any])

_CONFIG = ConfigDict(strict=True, arbitrary_types_allowed=True)
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
DEFAULT_PORTS = {"http": 80, "https": 443}


def _in_roots(path: str) -> str:
    return JobLimits.current().resolve_path(path)


def _reachable_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    port = parts.port or DEFAULT_PORTS[scheme]  # .port raises ValueError when out of range
    # A name that does not resolve now may resolve when the job runs: checked again then.
    JobLimits.current().check_host(parts.hostname, port, unresolved_ok=True)
    return url


def _absolute(path: str) -> str:
    if not os.path.isabs(path):
        raise ValueError("must be an absolute path")
    return path


# A file path for the file jobs: inside the job file roots (a relative one lies in the
# first root), never one of the service's own files; the function receives its real path.
FilePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        pattern=_NO_CONTROL,
        description="a path inside the job file roots (SCHEDULER_JOB_FILE_ROOTS)",
    ),
    AfterValidator(_in_roots),
]
AbsolutePath = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=_NO_CONTROL), AfterValidator(_absolute)
]
# An http(s) URL whose host resolves to addresses jobs may reach.
HttpUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        pattern=r"^[^\x00-\x20\x7f]*$",
        description="an http(s) URL; private addresses need SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS",
    ),
    AfterValidator(_reachable_url),
]
OneLine = Annotated[str, Field(max_length=1000, pattern=_NO_CONTROL)]
Name = Annotated[str, Field(max_length=200)]
Message = Annotated[str, Field(max_length=1000)]
FileGlob = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^/\x00]+$")]
Seconds = Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
Timeout = Annotated[float, Field(gt=0, le=300, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Days = Annotated[float, Field(ge=0, le=36500, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


def problem(error: ValidationError) -> str:
    """The first problem of a one-value validation, without the value (it may be secret)."""
    first = error.errors(include_url=False, include_input=False)[0]
    if first["type"] == "value_error":  # raised by a validator above: its own words
        return str(first["ctx"]["error"])
    return first["msg"]


def checked(func: F) -> F:
    """Check every call of ``func`` against its annotations (strictly) before it runs.

    :raises ValueError: naming each bad argument ("seconds: Input should be ..."); the
        values are left out, as one may come from a secret.
    """
    signature = inspect.signature(func)
    hints = typing.get_type_hints(func, include_extras=True)
    adapters = {
        name: TypeAdapter(hints[name], config=_CONFIG)
        for name in signature.parameters
        if name in hints
    }

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)  # TypeError, as a plain call would raise
        problems = []
        for name, value in bound.arguments.items():
            try:
                bound.arguments[name] = adapters[name].validate_python(value)
            except ValidationError as error:
                problems.append(f"{name}: {problem(error)}")
        if problems:
            raise ValueError("; ".join(problems))
        return func(*bound.args, **bound.kwargs)

    return typing.cast(F, call)
