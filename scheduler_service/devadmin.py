"""A generated admin for development mode, so the one-command start needs no secret set up."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from werkzeug.security import generate_password_hash

FILE_NAME = "dev-admin.json"


def _has_credentials(config: dict[str, Any]) -> bool:
    return bool(
        config["SCHEDULER_ADMIN_PASSWORD"]
        or config["SCHEDULER_ADMIN_PASSWORD_HASH"]
        or config["SCHEDULER_USERS"]
        or config["SCHEDULER_API_TOKENS"]
    )


def ensure_dev_admin(
    config: dict[str, Any], instance_path: Path, *, persist: bool = True
) -> str | None:
    """In development mode with no credentials set, use (or make) a generated admin.

    The password is stored only as a hash in the instance folder. Returns a message with the
    password when it was just generated (to print once), else None. Without ``persist`` (a
    check), a password is neither kept nor shown: the admin gets an unusable one for now.
    """
    if not config["SCHEDULER_DEV_MODE"] or _has_credentials(config):
        return None
    path = instance_path / FILE_NAME
    if path.is_file():
        saved = json.loads(path.read_text())
        config["SCHEDULER_ADMIN_USER"] = saved["user"]
        config["SCHEDULER_ADMIN_PASSWORD_HASH"] = saved["password_hash"]
        return None
    password = secrets.token_urlsafe(12)
    user = config["SCHEDULER_ADMIN_USER"]
    config["SCHEDULER_ADMIN_PASSWORD_HASH"] = generate_password_hash(password)
    if not persist:
        return None
    instance_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({"user": user, "password_hash": config["SCHEDULER_ADMIN_PASSWORD_HASH"]}, file)
    return (
        f"development mode: generated admin login  {user} / {password}\n"
        f"  (shown once; its hash is in {path}: delete that file for a new password)"
    )
