"""Job functions for the tests only (allowed with SCHEDULER_ALLOWED_MODULES)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from flask import current_app


def write_app_context(path: str) -> str:
    """Append "<pid> <instance folder of the current app>" to ``path``; needs an app context."""
    line = f"{os.getpid()} {current_app.instance_path}"
    with open(path, "a") as file:
        file.write(line + "\n")
    return line


def die(code: int) -> None:
    """End this process at once, as a crash would (no result is ever sent back)."""
    os._exit(code)


# Gates that tests open: a job blocked on one holds its executor instance until then.
GATES: dict[str, threading.Event] = {}


def wait_at_gate(name: str) -> str:
    """Block until the test opens gate ``name`` (30 s at most); thread executor only."""
    GATES.setdefault(name, threading.Event()).wait(30)
    return name


def _append_line(path: str, text: str) -> None:
    """Append ``text`` and a newline in one write() on O_APPEND: lines never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{text}\n".encode())
    finally:
        os.close(fd)


def sleep_then_record(path: str, value: str, seconds: float) -> str:
    """Sleep ``seconds`` (the run's work), then append the line "<value>" to ``path``."""
    time.sleep(seconds)
    _append_line(path, value)
    return value


def record_at_gate(gate: str, path: str, value: str, fail: bool = False) -> str:
    """Wait (60 s at most) until the file ``gate`` exists, append "<value>" to ``path``, then
    return, or raise RuntimeError(value) when ``fail``; works in any executor and process."""
    deadline = time.monotonic() + 60
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate file {gate} never appeared")
        time.sleep(0.02)
    _append_line(path, value)
    if fail:
        raise RuntimeError(value)
    return value


def keep(value: Any = None, **more: Any) -> Any:
    """Return its argument: any JSON value is a valid argument (to test the bounds of args)."""
    return value
