"""Example jobs: the classic demo job plus small jobs the service's tests use to prove firing.

Their arguments are checked against their annotations (``jobs._args``) when a job is created
and again when it runs; the file jobs work only inside the job file roots (``jobs._limits``).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from ._args import Count, FilePath, Message, Name, OneLine, Seconds, checked

logger = logging.getLogger(__name__)

# Opened without following a symlink in the last step: the path was checked as a real path.
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


@checked
def print_test(name: Name) -> str:
    """Print and log "Hello, <name>" (the classic demo job); name: who to greet."""
    message = f"Hello, {name}"
    print(message, flush=True)
    logger.info("print_test: %s", message)
    return message


@checked
def fail(message: Message = "this job always fails") -> None:
    """Always raise RuntimeError(message), to exercise failure handling; message: the error text."""
    logger.info("fail: raising RuntimeError(%r)", message)
    raise RuntimeError(message)


@checked
def sleep(seconds: Seconds, cancel: threading.Event | None = None) -> float:
    """Sleep for `seconds` (0 to 86400), or until cancelled; return the seconds slept.

    The service passes `cancel` and sets it when the run passes its timeout.
    """
    start = time.monotonic()
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        logger.info("sleep: cancelled")
    elapsed = time.monotonic() - start
    logger.info("sleep: asked for %ss, slept %.3fs", seconds, elapsed)
    return elapsed


@checked
def record(path: FilePath, value: OneLine = "") -> dict:
    """Append "<time> <pid> <value>" to the file at path (creating folders): proof of a run.

    path: inside the job file roots (a relative path lies in the first root).
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pid = os.getpid()
    line = f"{time.time()} {pid} {value}\n".encode()
    # One write() on an O_APPEND descriptor: concurrent appenders never interleave within a line.
    fd = os.open(path, _APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    logger.info("record: appended value %r to %s (pid %d)", value, path, pid)
    return {"path": path, "pid": pid, "value": value}


@checked
def flaky(path: FilePath, failures: Count) -> int:
    """Fail the first `failures` times it runs (counted in the file at `path`), then succeed.

    Shows retries at work: with "retries" of at least `failures`, one fire succeeds.
    path: inside the job file roots.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, (_APPEND & ~os.O_WRONLY) | os.O_RDWR, 0o644)
    with open(fd, "a+") as file:
        file.seek(0)
        attempt = len(file.read().splitlines()) + 1
        file.write(f"{time.time()}\n")
    if attempt <= failures:
        raise RuntimeError(f"flaky: attempt {attempt} of {failures + 1} fails on purpose")
    logger.info("flaky: attempt %d succeeded", attempt)
    return attempt
