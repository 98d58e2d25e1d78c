"""Job functions for the tests only (allowed with SCHEDULER_ALLOWED_MODULES)."""

from __future__ import annotations

import os
import threading

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
