"""Users, roles, password and token checks, @require_role; no routes.

Passwords are kept as werkzeug hashes (scrypt by default). Checking one costs tens of
milliseconds, so a successful check is cached under an HMAC of the credentials with a key that
lives only in this process: the cache holds no password, a wrong password never hits it, and
changing the users (``Authenticator.set_users``) empties it. What limits failed logins and the
hashes under way is in ``throttle.py``.

Size: users, roles and the two credential checks share the cache and the hashing bound; the
limits on failed logins are apart, in throttle.py.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import ConfigError, Forbidden, Unauthorized
from .sessions import fingerprint, session_user
from .throttle import (
    LoginLimits,
    PasswordChecks,
    acquire_before,
    basic_credentials,
    client_address,
)

ROLES = ("viewer", "operator", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
EXTENSION_KEY = "scheduler_service.auth"
# The dashboard's sign-in page, its static files and the root's redirect to it are public too.
PUBLIC_ENDPOINTS = frozenset(
    {"health.healthz", "health.readyz", "static", "ui.login", "ui.static", "ui_home.home_page"}
)
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
    via: str  # "basic", "token" or "session"

    def has(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]


class Authenticator:
    """Check HTTP Basic credentials and bearer tokens against hashed secrets.

    A successful password check is cached (bounded, least recently used first out) under an
    HMAC of the credentials; ``set_users`` forgets every entry, and a check that overlapped
    the change is not cached. Concurrent checks of the same credentials run the password hash
    once: the others wait for it, then read the cache. Checks that miss the cache are bounded
    by ``checks`` (they wait for a turn a bounded time, then fail with 503); HTTP Basic logins
    past ``limits`` are refused before any check (429).
    """

    def __init__(
        self,
        *,
        users: dict[str, tuple[str, str]],
        tokens: dict[str, Principal],
        cache_ttl: float,
        cache_size: int,
        checks: PasswordChecks,
        limits: LoginLimits,
    ) -> None:
        self._users = dict(users)  # name -> (password hash, role)
        self._tokens = tokens  # sha256 hex of the token -> principal
        self._ttl = cache_ttl
        self._size = cache_size
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()  # expiry
        self._checking: dict[bytes, list[Any]] = {}  # digest -> [lock, threads using it]
        self._lock = threading.Lock()
        self._checks = checks
        self._limits = limits

    @functools.cached_property
    def _dummy_hash(self) -> str:
        """A hash checked when the user is unknown, so both cases cost the same."""
        return generate_password_hash(secrets.token_urlsafe(16))

    def set_users(self, users: dict[str, tuple[str, str]]) -> None:
        """Replace the users (name -> (password hash, role)) and forget every cached check."""
        with self._lock:
            self._users = dict(users)
            self._cache.clear()

    def check_basic(self, credentials: str) -> Principal | None:
        """Return the principal for HTTP Basic credentials (base64 of "name:password"), or
        None; a cache hit decodes nothing and hashes nothing but an HMAC.

        :raises ServiceUnavailable: too many checks under way to wait for a turn.
        """
        if not credentials.isascii():  # raw bytes in the header: base64 is ASCII
            return None
        digest = hmac.new(self._key, credentials.encode(), hashlib.sha256).digest()
        principal = self._cached(digest)
        if principal is not None:
            return principal
        with self._checks.admitted() as deadline, self._one_check_at_a_time(digest, deadline):
            # Another thread may have verified the same credentials while this one waited.
            return self._cached(digest) or self._verify(credentials, digest, deadline)

    def _cached(self, digest: bytes) -> Principal | None:
        with self._lock:
            hit = self._cache.get(digest)
            if hit is None:
                return None
            if hit[0] <= time.monotonic():
                del self._cache[digest]
                return None
            self._cache.move_to_end(digest)
            return hit[1]

    def _verify(self, credentials: str, digest: bytes, deadline: float) -> Principal | None:
        parsed = basic_credentials(credentials)
        if parsed is None:  # not base64 of UTF-8
            return None
        name, password = parsed
        user = self._users.get(name)
        password_hash, role = user or (self._dummy_hash, "")  # an unknown user costs the same
        with self._checks.hashing(deadline):
            ok = check_password_hash(password_hash, password)
        if user is None or not ok:
            return None  # never cached: a wrong password is checked every time
        principal = Principal(name=name, role=role, via="basic")
        if self._ttl > 0:
            with self._lock:
                if self._users.get(name) == user:  # not changed while the hash ran
                    self._cache[digest] = (time.monotonic() + self._ttl, principal)
                    while len(self._cache) > self._size:
                        self._cache.popitem(last=False)
        return principal

    @contextlib.contextmanager
    def _one_check_at_a_time(self, digest: bytes, deadline: float) -> Iterator[None]:
        """Hold a lock of these credentials, waiting until ``deadline`` at most; it lives only
        while some thread uses it.

        :raises ServiceUnavailable: another check of them did not end in time.
        """
        with self._lock:
            entry = self._checking.setdefault(digest, [threading.Lock(), 0])
            entry[1] += 1
        try:
            acquire_before(entry[0], deadline)
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self._lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._checking[digest]

    def check_token(self, token: str) -> Principal | None:
        """Return the principal for a bearer token, or None."""
        if not token.isascii():  # tokens are URL-safe base64
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        for known, principal in self._tokens.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    def authenticate(self) -> Principal:
        """Authenticate the current request.

        :raises Unauthorized: no or wrong credentials.
        :raises TooManyRequests: an HTTP Basic login past the failed-login limits.
        :raises ServiceUnavailable: too many password checks under way.
        """
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            principal = self.check_token(credentials.strip())
        elif scheme == "basic":
            principal = self._login(credentials.strip(" \t"))
        elif not header:  # a browser signed in to the dashboard (sessions.py)
            principal = self.check_session()
        else:
            principal = None
        if principal is None:
            raise Unauthorized(
                "authentication required" if not header else "wrong credentials",
                headers={"WWW-Authenticate": www_authenticate_header()},
            )
        return principal

    def login(self, name: str, password: str) -> tuple[Principal, str] | None:
        """Check a sign-in form's name and password as HTTP Basic credentials (same limits,
        cache and hashing bound); return the principal and its password hash, or None.

        :raises TooManyRequests: past the failed-login limits.
        :raises ServiceUnavailable: too many password checks under way.
        """
        credentials = base64.b64encode(f"{name}:{password}".encode()).decode("ascii")
        principal = self._login(credentials)
        if principal is None or ":" in name:  # Basic cannot carry a colon in a name
            return None
        with self._lock:
            user = self._users.get(principal.name)
        return None if user is None else (principal, user[0])

    def check_session(self) -> Principal | None:
        """Return the principal of the request's dashboard sign-in, checked against the
        current users (and their current role and password), or None."""
        signed_in = session_user(current_app.permanent_session_lifetime)
        if signed_in is None:
            return None
        name, password_fingerprint = signed_in
        with self._lock:
            user = self._users.get(name)
        if user is None or not hmac.compare_digest(fingerprint(user[0]), password_fingerprint):
            return None
        return Principal(name=name, role=user[1], via="session")

    def _login(self, credentials: str) -> Principal | None:
        """Check HTTP Basic credentials within the failed-login limits (see throttle.py)."""
        address = client_address()
        parsed = basic_credentials(credentials)
        name = parsed[0] if parsed else None
        self._limits.check(address=address, name=name)
        principal = self.check_basic(credentials)
        if principal is None:
            self._limits.failed(address=address, name=name)
        else:
            self._limits.succeeded(address=address, name=principal.name)
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

    :raises ConfigError: a user or token entry is malformed, no user can log in, or the
        failed-login storage is not one ``limits`` knows.
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
        checks=PasswordChecks(
            size=config["SCHEDULER_PASSWORD_CHECKS"], wait=config["SCHEDULER_PASSWORD_CHECK_WAIT"]
        ),
        limits=LoginLimits(
            per_address=config["SCHEDULER_LOGIN_FAILURES_PER_ADDRESS"],
            per_user=config["SCHEDULER_LOGIN_FAILURES_PER_USER"],
            storage_uri=config["SCHEDULER_LOGIN_LIMITS_STORAGE"],
        ),
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
    endpoint = request.endpoint
    if endpoint in PUBLIC_ENDPOINTS:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    principal = app.extensions[EXTENSION_KEY].authenticate()
    view = app.view_functions.get(endpoint or "")
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
