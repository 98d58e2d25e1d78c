"""Browser sessions for the dashboard: Flask's signed session cookie, its key and its rules.

The cookie holds the user's name, role (shown only), a fingerprint of their password hash and
the time of the sign-in; it is signed, not encrypted, and holds no secret. ``auth.py`` takes a
request with the cookie and no Authorization header as that user, checked again against the
current users on every request: a removed user, a changed role or a changed password takes
effect at once, and a sign-in ends SCHEDULER_UI_SESSION_HOURS after it was made, however
much it is used.

The cookie is HttpOnly, SameSite=Strict, and Secure on HTTPS requests. Cross-site requests
that change something are refused before any of this by ``guards.py`` (Fetch Metadata and
Origin), which is the CSRF defence of a cookie session; SameSite=Strict is a second one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface

KEY_FILE = "secret-key"
COOKIE_NAME = "scheduler_session"


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def secret_key(config: dict[str, Any], instance_path: Path, *, persist: bool = True) -> str:
    """Return SCHEDULER_SECRET_KEY, or the key kept in the instance folder (made on first
    use, mode 0600). Without ``persist`` (a check), an unset key is a throwaway one."""
    if config["SCHEDULER_SECRET_KEY"]:
        return config["SCHEDULER_SECRET_KEY"]
    path = instance_path / KEY_FILE
    if path.is_file():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    if not persist:
        return key
    instance_path.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this instance made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key)
    return key


def init_sessions(app: Flask, *, persist: bool = True) -> None:
    """Give ``app`` its session key and cookie rules."""
    app.secret_key = secret_key(app.config, Path(app.instance_path), persist=persist)
    app.config["SCHEDULER_SECRET_KEY"] = None  # kept only as Flask's SECRET_KEY
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=app.config["SCHEDULER_UI_SESSION_HOURS"]),
    )
    app.session_interface = _SessionInterface()


def fingerprint(password_hash: str) -> str:
    """A short digest of a password hash: a sign-in ends when the password changes."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def start_session(*, name: str, role: str, password_hash: str) -> None:
    """Sign the browser in as ``name``."""
    session.clear()
    session.permanent = True
    session.update(user=name, role=role, fp=fingerprint(password_hash), since=time.time())


def end_session() -> None:
    """Sign the browser out."""
    session.clear()


def session_user(lifetime: timedelta) -> tuple[str, str] | None:
    """Return (name, password fingerprint) of the request's sign-in, or None when it has
    none or it is older than ``lifetime``."""
    if "user" not in session:  # reads the cookie only when there is one
        return None
    user, fp, since = session.get("user"), session.get("fp"), session.get("since")
    if not isinstance(user, str) or not isinstance(fp, str) or not isinstance(since, float):
        return None
    if time.time() - since > lifetime.total_seconds():
        return None
    return user, fp
