"""Example jobs: the classic demo job plus small jobs the service's tests use to prove firing."""

from __future__ import annotations

import logging
import math
import os
import threading
import time

logger = logging.getLogger(__name__)

_MAX_SLEEP_SECONDS = 86400.0


def print_test(name: str) -> str:
    """Print and log "Hello, <name>" (the classic demo job); name: who to greet."""
    message = f"Hello, {name}"
    print(message, flush=True)
    logger.info("print_test: %s", message)
    return message


def fail(message: str = "this job always fails") -> None:
    """Always raise RuntimeError(message), to exercise failure handling; message: the error text."""
    logger.info("fail: raising RuntimeError(%r)", message)
    raise RuntimeError(message)


def sleep(seconds: float, cancel: threading.Event | None = None) -> float:
    """Sleep for `seconds` (0 to 86400), or until cancelled; return the seconds slept.

    The service passes `cancel` and sets it when the run passes its timeout.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f"seconds must be a number, got {seconds!r}")
    if not math.isfinite(seconds) or not 0 <= seconds <= _MAX_SLEEP_SECONDS:
        raise ValueError(f"seconds must be between 0 and {_MAX_SLEEP_SECONDS:g}, got {seconds!r}")
    start = time.monotonic()
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        logger.info("sleep: cancelled")
    elapsed = time.monotonic() - start
    logger.info("sleep: asked for %ss, slept %.3fs", seconds, elapsed)
    return elapsed


def record(path: str, value: str = "") -> dict:
    """Append "<time> <pid> <value>" to the file at path (creating folders): proof of a run."""
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise ValueError(f"path must be a non-empty file path, got {path!r}")
    value = str(value)
    if "\n" in value or "\r" in value:
        raise ValueError("value must not contain line breaks")
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    pid = os.getpid()
    line = f"{time.time()} {pid} {value}\n".encode()
    # One write() on an O_APPEND descriptor: concurrent appenders never interleave within a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    logger.info("record: appended value %r to %s (pid %d)", value, path, pid)
    return {"path": path, "pid": pid, "value": value}


def flaky(path: str, failures: int) -> int:
    """Fail the first `failures` times it runs (counted in the file at `path`), then succeed.

    Shows retries at work: with "retries" of at least `failures`, one fire succeeds.
    """
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
        raise ValueError(f"failures must be a whole number >= 0, got {failures!r}")
    with open(path, "a+") as file:
        file.seek(0)
        attempt = len(file.read().splitlines()) + 1
        file.write(f"{time.time()}\n")
    if attempt <= failures:
        raise RuntimeError(f"flaky: attempt {attempt} of {failures + 1} fails on purpose")
    logger.info("flaky: attempt %d succeeded", attempt)
    return attempt
