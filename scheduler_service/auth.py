"""Users, roles, password and token checks, @require_role; no routes.

Passwords are kept as werkzeug hashes (scrypt by default). Checking one costs tens of
milliseconds, so a successful check is cached under an HMAC of the credentials with a key that
lives only in this process: the cache holds no password, and a wrong password never hits it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import ConfigError, Forbidden, Unauthorized

ROLES = ("viewer", "operator", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
EXTENSION_KEY = "scheduler_service.auth"
PUBLIC_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "static"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Passwords refused outside development mode.
WEAK_PASSWORDS = frozenset({"admin", "password", "changeme", "secret", "scheduler", "123456"})
MIN_PASSWORD_LENGTH = 8

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """Who made the request, and with which role."""

    name: str
    role: str
    via: str  # "basic" or "token"

    def has(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]


class Authenticator:
    """Check HTTP Basic credentials and bearer tokens against hashed secrets."""

    def __init__(
        self,
        *,
        users: dict[str, tuple[str, str]],
        tokens: dict[str, Principal],
        cache_ttl: float,
        cache_size: int,
    ) -> None:
        self._users = users  # name -> (password hash, role)
        self._tokens = tokens  # sha256 hex of the token -> principal
        self._ttl = cache_ttl
        self._size = cache_size
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    @functools.cached_property
    def _dummy_hash(self) -> str:
        """A hash checked when the user is unknown, so both cases cost the same."""
        return generate_password_hash(secrets.token_urlsafe(16))

    def check_basic(self, name: str, password: str) -> Principal | None:
        """Return the principal for these credentials, or None."""
        digest = hmac.new(self._key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(digest)
                return hit[1]
        password_hash, role = self._users.get(name, (self._dummy_hash, ""))
        if not check_password_hash(password_hash, password) or not role:
            return None
        principal = Principal(name=name, role=role, via="basic")
        if self._ttl > 0:
            with self._lock:
                self._cache[digest] = (now + self._ttl, principal)
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return principal

    def check_token(self, token: str) -> Principal | None:
        """Return the principal for a bearer token, or None."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        for known, principal in self._tokens.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    def authenticate(self) -> Principal:
        """Authenticate the current request.

        :raises Unauthorized: no or wrong credentials.
        """
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            principal = self.check_token(header[7:].strip())
        else:
            auth = request.authorization
            principal = (
                self.check_basic(auth.username or "", auth.password or "")
                if auth is not None and auth.type == "basic"
                else None
            )
        if principal is None:
            raise Unauthorized("authentication required" if not header else "wrong credentials")
        return principal


def _role(value: Any, where: str) -> str:
    if value not in _RANK:
        raise ConfigError(f"{where}: role must be one of {', '.join(ROLES)}, not {value!r}")
    return value


def _admin_hash(config: dict[str, Any]) -> str | None:
    if config["SCHEDULER_ADMIN_PASSWORD_HASH"]:
        return config["SCHEDULER_ADMIN_PASSWORD_HASH"]
    password = config["SCHEDULER_ADMIN_PASSWORD"]
    if password is None:
        return None
    if not config["SCHEDULER_DEV_MODE"] and (
        password.lower() in WEAK_PASSWORDS or len(password) < MIN_PASSWORD_LENGTH
    ):
        raise ConfigError(
            "SCHEDULER_ADMIN_PASSWORD: refusing an empty, default or short password "
            f"(fewer than {MIN_PASSWORD_LENGTH} characters); set a strong one, or "
            "SCHEDULER_DEV_MODE=1 on a development machine"
        )
    return generate_password_hash(password)


def build_authenticator(config: dict[str, Any]) -> Authenticator:
    """Build the authenticator from settings; drop the plain-text admin password.

    :raises ConfigError: a user or token entry is malformed, or no user can log in.
    """
    users: dict[str, tuple[str, str]] = {}
    admin_hash = _admin_hash(config)
    config["SCHEDULER_ADMIN_PASSWORD"] = None  # nothing secret left in app.config
    if admin_hash:
        users[config["SCHEDULER_ADMIN_USER"]] = (admin_hash, "admin")
    for i, entry in enumerate(config["SCHEDULER_USERS"]):
        where = f"SCHEDULER_USERS[{i}]"
        if not isinstance(entry.get("name"), str) or not isinstance(
            entry.get("password_hash"), str
        ):
            raise ConfigError(
                f"{where}: needs 'name' and 'password_hash' (scheduler-service "
                "hash-password makes one)"
            )
        users[entry["name"]] = (entry["password_hash"], _role(entry.get("role", "viewer"), where))
    tokens: dict[str, Principal] = {}
    for i, entry in enumerate(config["SCHEDULER_API_TOKENS"]):
        where = f"SCHEDULER_API_TOKENS[{i}]"
        digest = entry.get("token_sha256")
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or not isinstance(entry.get("name"), str)
        ):
            raise ConfigError(
                f"{where}: needs 'name' and a 64-hex-digit 'token_sha256' "
                "(scheduler-service new-token makes one)"
            )
        tokens[digest.lower()] = Principal(entry["name"], _role(entry.get("role"), where), "token")
    if not users and not tokens:
        raise ConfigError(
            "SCHEDULER_ADMIN_PASSWORD: no user can log in; set SCHEDULER_ADMIN_PASSWORD or "
            "SCHEDULER_ADMIN_PASSWORD_HASH (or SCHEDULER_DEV_MODE=1 for a generated password)"
        )
    return Authenticator(
        users=users,
        tokens=tokens,
        cache_ttl=config["SCHEDULER_AUTH_CACHE_TTL"],
        cache_size=config["SCHEDULER_AUTH_CACHE_SIZE"],
    )


def require_role(role: str) -> Callable[[F], F]:
    """Mark a view as needing at least ``role`` (views without a mark: viewer to read,
    admin to change)."""
    _role(role, "require_role")

    def mark(view: F) -> F:
        view.required_role = role  # type: ignore[attr-defined]
        return view

    return mark


def www_authenticate_header() -> str:
    """Return the WWW-Authenticate value for a 401."""
    realm = current_app.config.get("SCHEDULER_AUTH_REALM", "scheduler-service")
    return f'Basic realm="{realm}", charset="UTF-8"'


def required_role(view: Callable[..., Any] | None, method: str) -> str:
    """Return the role a view needs: its @require_role, else viewer to read, admin to change."""
    return getattr(view, "required_role", None) or (
        "viewer" if method in _SAFE_METHODS else "admin"
    )


def _check_request() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    principal = current_app.extensions[EXTENSION_KEY].authenticate()
    view = current_app.view_functions.get(request.endpoint or "")
    needed = required_role(view, request.method)
    if not principal.has(needed):
        raise Forbidden(
            f"this needs the {needed} role; {principal.name!r} has the {principal.role} role"
        )
    g.principal = principal


def init_auth(app: Flask) -> None:
    """Authenticate every request except health probes, and enforce roles per route."""
    app.extensions[EXTENSION_KEY] = build_authenticator(app.config)
    app.before_request(_check_request)
