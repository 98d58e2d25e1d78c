"""Secrets in job arguments (SPEC §9): an argument given as ``{"secret": "ENV_NAME"}``.

The reference is stored and shown as written; nobody reading the job sees the value. The
worker resolves it from the environment of the process that runs the job, when the run
starts, and hides the value from everything the run leaves behind: its error, traceback,
result and captured log, and the log records its thread emits meanwhile (the service's own
log included). A job that prints it to stdout is beyond reach.

Only the variables SCHEDULER_JOB_SECRETS allows may be referenced (names, or prefixes ending
in ``*``; default ``JOB_SECRET_*``), and never one named ``SCHEDULER_*``: otherwise whoever
may create jobs could read SCHEDULER_ADMIN_PASSWORD or the database URL through a job that
echoes its argument (``print_test(name={"secret": "SCHEDULER_ADMIN_PASSWORD"})``).

A reference to a variable that is not set when the job is created is accepted, with a
warning in the log: the run may happen in another process or replica, whose environment is
the one that counts. A run whose variable is missing then fails, naming the variable.

Only top-level argument values are references (an item of ``args``, a value of ``kwargs``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..redact import mask

log = logging.getLogger(__name__)

KEY = "secret"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RESERVED_PREFIX = "SCHEDULER_"  # the service's own settings: never a job's


class SecretUnavailable(RuntimeError):
    """A referenced variable is not set, or no longer allowed, where the run starts."""


def is_reference(value: Any) -> bool:
    """Whether an argument value is (meant as) a secret reference."""
    return isinstance(value, dict) and KEY in value


def name_allowed(name: str, patterns: Sequence[str]) -> bool:
    """Whether a job may reference the variable ``name`` under SCHEDULER_JOB_SECRETS."""
    if name.upper().startswith(RESERVED_PREFIX):
        return False
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns if p)


def _problem(value: dict[str, Any], patterns: Sequence[str]) -> str | None:
    if set(value) != {KEY}:
        return 'a secret reference is {"secret": "ENV_NAME"} and nothing more'
    name = value[KEY]
    if not isinstance(name, str) or not NAME.match(name):
        return "a secret reference names an environment variable: letters, digits, _"
    if not name_allowed(name, patterns):
        return (
            f"the environment variable {name} may not be referenced (SCHEDULER_JOB_SECRETS "
            f"allows {', '.join(patterns) or 'none'}; SCHEDULER_* never)"
        )
    return None


def _references(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Yield (job field, value) of every top-level argument value that is a reference."""
    for index, value in enumerate(args):
        if is_reference(value):
            yield f"args.{index}", value
    for key, value in kwargs.items():
        if is_reference(value):
            yield f"kwargs.{key}", value


def check_references(
    args: Sequence[Any], kwargs: Mapping[str, Any], *, patterns: Sequence[str]
) -> dict[str, str]:
    """Return the problems of the secret references among these arguments, by job field;
    warn (in the log) of references to variables that this process does not have."""
    errors = {}
    for field, value in _references(args, kwargs):
        problem = _problem(value, patterns)
        if problem is not None:
            errors[field] = problem
        elif value[KEY] not in os.environ:
            log.warning(
                "%s references the environment variable %s, which is not set here: runs "
                "will fail unless the process that runs them has it",
                field,
                value[KEY],
            )
    return errors


def resolve_references(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    patterns: Sequence[str],
    environ: Mapping[str, str] | None = None,
) -> tuple[Sequence[Any], Mapping[str, Any], list[str]]:
    """Return the arguments with every reference replaced by its variable's value, and the
    values (to hide). Arguments without references come back as they are.

    :raises SecretUnavailable: naming the argument and the variable, never a value.
    """
    found = list(_references(args, kwargs))
    if not found:
        return args, kwargs, []
    environ = os.environ if environ is None else environ
    resolved_args, resolved_kwargs = list(args), dict(kwargs)
    values = []
    for field, value in found:
        problem = _problem(value, patterns)
        if problem is not None:
            raise SecretUnavailable(f"{field}: {problem}")
        name = value[KEY]
        if name not in environ:
            raise SecretUnavailable(
                f"{field}: the environment variable {name} is not set in the process "
                "that runs the job"
            )
        kind, _, key = field.partition(".")
        if kind == "args":
            resolved_args[int(key)] = environ[name]
        else:
            resolved_kwargs[key] = environ[name]
        values.append(environ[name])
    return resolved_args, resolved_kwargs, values


def _forms(values: Sequence[str]) -> set[str]:
    """Each value as it may appear in text: as is, JSON-escaped, repr-escaped."""
    return {f for v in values if v for f in (v, json.dumps(v)[1:-1], repr(v)[1:-1]) if f}


def redact(text: str | None, values: Sequence[str]) -> str | None:
    """Replace every occurrence of the values in ``text`` with ***."""
    if not text or not values:
        return text
    return mask(text, _forms(values))


def redact_value(value: Any, values: Sequence[str]) -> Any:
    """Return ``value`` (a job's return value) with the values masked in its strings."""
    if not values:
        return value
    if isinstance(value, str):
        return redact(value, values)
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v, values) for v in value)
    if isinstance(value, dict):
        return {redact_value(k, values): redact_value(v, values) for k, v in value.items()}
    return value


# -- hiding the values from log records ------------------------------------------------------

_hidden = threading.local()
_install_lock = threading.Lock()
_installed = False


def _hide_in(record: logging.LogRecord, values: Sequence[str]) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: the handler will report it
        return
    record.msg, record.args = redact(message, values), None
    if record.exc_info:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info), values)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, values)


def _install_factory() -> None:
    """Wrap the log record factory once: records made by a thread that is hiding values
    have them replaced before any handler sees them."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            values = getattr(_hidden, "values", None)
            if values:
                _hide_in(record, values)
            return record

        logging.setLogRecordFactory(make)
        _installed = True


@contextlib.contextmanager
def hidden_in_logs(values: Sequence[str]) -> Iterator[None]:
    """Hide ``values`` from the log records this thread makes inside the block."""
    if not values:
        yield
        return
    _install_factory()
    outer = getattr(_hidden, "values", None)
    _hidden.values = [*(outer or ()), *values]
    try:
        yield
    finally:
        _hidden.values = outer
