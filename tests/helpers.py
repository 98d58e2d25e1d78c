"""Credentials, settings and waiting helpers shared by the tests."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

PASSWORDS = {"admin": "admin-pass-1", "operator": "operator-pass-1", "viewer": "viewer-pass-1"}
# A cheap hash method keeps the suite fast; the service's default is scrypt.
_HASHES = {
    role: generate_password_hash(pw, method="pbkdf2:sha256:1000") for role, pw in PASSWORDS.items()
}


def basic(user: str, password: str) -> dict[str, str]:
    """Return an Authorization header for HTTP Basic."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("admin", PASSWORDS["admin"])
OPERATOR = basic("operator", PASSWORDS["operator"])
VIEWER = basic("viewer", PASSWORDS["viewer"])


def base_config(instance: Path) -> dict[str, Any]:
    """Settings for a test app on a SQLite file store in ``instance``."""
    return {
        "SCHEDULER_INSTANCE_PATH": str(instance),
        "SCHEDULER_ADMIN_PASSWORD_HASH": _HASHES["admin"],
        "SCHEDULER_USERS": [
            {"name": "operator", "password_hash": _HASHES["operator"], "role": "operator"},
            {"name": "viewer", "password_hash": _HASHES["viewer"], "role": "viewer"},
        ],
        "SCHEDULER_EXECUTORS": {
            "default": {"type": "threadpool", "max_workers": 4},
            "process": {"type": "processpool", "max_workers": 1},
        },
        # Tests that want jobs to fire resume the scheduler themselves.
        "SCHEDULER_START_PAUSED": True,
    }


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)
