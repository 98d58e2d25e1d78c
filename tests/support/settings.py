"""The settings of a test app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.credentials import PASSWORD_HASHES


def base_config(instance: Path) -> dict[str, Any]:
    """Settings for a test app on a SQLite file store in ``instance``."""
    return {
        "SCHEDULER_INSTANCE_PATH": str(instance),
        "SCHEDULER_ADMIN_PASSWORD_HASH": PASSWORD_HASHES["admin"],
        "SCHEDULER_USERS": [
            {"name": "operator", "password_hash": PASSWORD_HASHES["operator"], "role": "operator"},
            {"name": "viewer", "password_hash": PASSWORD_HASHES["viewer"], "role": "viewer"},
        ],
        "SCHEDULER_EXECUTORS": {
            "default": {"type": "threadpool", "max_workers": 4},
            "process": {"type": "processpool", "max_workers": 1},
        },
        # Tests that want jobs to fire resume the scheduler themselves.
        "SCHEDULER_START_PAUSED": True,
        # File jobs write into the test's own folder (the instance folder stays refused).
        "SCHEDULER_JOB_FILE_ROOTS": [str(instance.parent)],
    }
