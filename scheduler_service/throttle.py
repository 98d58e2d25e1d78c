"""Limits on logging in: failed logins per client address and per user (Flask-Limiter), and
how many password hashes run at once. No routes; ``auth.init_auth`` wires it.

A wrong password costs a scrypt run (about 100 ms of CPU and 32 MiB), and anyone who reaches
the port may send one. So:

- **Failed logins are counted per address and per user name** (``SCHEDULER_LOGIN_FAILURES_*``).
  A login over either limit is answered 429 with ``Retry-After`` before its password is looked
  at, so the answer never tells whether a guess was right. Only failed HTTP Basic logins count:
  a success, a request without credentials, a 429 or a 503 does not.
- **The per-user limit cannot lock a user out of their own machines.** It does not apply from
  an address where that user logged in successfully in the last day (``KnownAddresses``): an
  attacker guessing from elsewhere is refused, the user is not. Whether it applies is decided
  before the password is looked at. The per-address limit is the tighter one; it applies to
  everyone, so a user who shares an address with an attacker (one NAT) is refused with them.
- **Bearer tokens are neither counted nor refused:** a token is a 256-bit random secret checked
  with one SHA-256; there is nothing to guess and nothing costly to repeat.
- **At most SCHEDULER_PASSWORD_CHECKS hashes run at once** (``PasswordChecks``), and as many
  checks again may wait for a turn, each up to SCHEDULER_PASSWORD_CHECK_WAIT seconds; any other
  check is answered 503 at once. Password checks thus hold at most twice that many request
  threads, whatever the load, and the other threads serve tokens and verified credentials (the
  authenticator's cache), which never wait for a hash.

Counts live in Flask-Limiter's storage (moving windows): ``memory://`` counts in each process,
so N gunicorn workers or replicas allow N times the limits; a ``redis://`` URI shares them (if
it becomes unreachable, counting falls back to memory). Several requests checked at the same
instant may each get past a limit before any of their failures is counted: the overshoot is at
most the number of checks under way (see above).
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator

from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from limits.errors import ConfigurationError

from .errors import ConfigError, ServiceUnavailable, error_response

EXTENSION_KEY = "scheduler_service.throttle"
# A user's address stays known this long after their last successful login, at most this many
# (user, address) pairs (least recently seen out first).
KNOWN_ADDRESS_TTL = 24 * 3600.0
KNOWN_ADDRESS_SIZE = 10_000


def basic_credentials(value: str) -> tuple[str, str] | None:
    """Return (name, password) from the base64 of HTTP Basic, or None when it is not base64
    of UTF-8 (raw non-ASCII bytes included)."""
    try:
        name, _, password = base64.b64decode(value.encode("ascii")).decode().partition(":")
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        return None
    return name, password


def _basic_name() -> str | None:
    """The user name the current request claims with HTTP Basic, if it is readable."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    credentials = basic_credentials(value.strip(" \t"))
    return credentials[0] if credentials else None


def client_address() -> str:
    """The address failed logins are counted under (the peer; see README "Limits" behind a
    proxy)."""
    return request.remote_addr or "unknown"


class KnownAddresses:
    """Remember the addresses each user logged in from (bounded, least recently seen out)."""

    def __init__(self, *, ttl: float = KNOWN_ADDRESS_TTL, size: int = KNOWN_ADDRESS_SIZE) -> None:
        self._ttl = ttl
        self._size = size
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()  # -> expiry
        self._lock = threading.Lock()

    def add(self, name: str, address: str) -> None:
        with self._lock:
            self._seen[(name, address)] = time.monotonic() + self._ttl
            self._seen.move_to_end((name, address))
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)

    def __contains__(self, pair: tuple[str, str]) -> bool:
        with self._lock:
            return self._seen.get(pair, 0.0) > time.monotonic()


def _busy() -> ServiceUnavailable:
    return ServiceUnavailable(
        "too many password checks under way; retry in a second", headers={"Retry-After": "1"}
    )


class PasswordChecks:
    """Bound the password hashes that run at once, and the checks that wait for a turn.

    At most ``size`` hashes run at once; at most ``size`` more checks wait, each until ``wait``
    seconds after it came in; any other check is refused at once.
    """

    def __init__(self, *, size: int, wait: float) -> None:
        self._inside = threading.BoundedSemaphore(2 * size)
        self._hashing = threading.BoundedSemaphore(size)
        self._wait = wait

    @contextlib.contextmanager
    def admitted(self) -> Iterator[float]:
        """Hold a place among the checks under way; yield the deadline of its waits.

        :raises ServiceUnavailable: every place is taken (503, Retry-After: 1).
        """
        if not self._inside.acquire(blocking=False):
            raise _busy()
        try:
            yield time.monotonic() + self._wait
        finally:
            self._inside.release()

    @contextlib.contextmanager
    def hashing(self, deadline: float) -> Iterator[None]:
        """Hold a turn to run a hash, waiting for one until ``deadline``.

        :raises ServiceUnavailable: no turn came in time.
        """
        if not self._hashing.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise _busy()
        try:
            yield
        finally:
            self._hashing.release()


def acquire_before(lock: threading.Lock, deadline: float) -> None:
    """Acquire ``lock``, waiting until ``deadline`` at most.

    :raises ServiceUnavailable: it was not free in time.
    """
    if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise _busy()


def _refusal(who: str) -> Callable[[RequestLimit], Response]:
    def refuse(limit: RequestLimit) -> Response:
        retry = max(1, limit.reset_at - int(time.time()))
        response = error_response(429, f"too many failed logins {who}; retry in {retry} s")
        response.headers["Retry-After"] = str(retry)
        return response

    return refuse


def init_login_limits(app: Flask, *, known: KnownAddresses, public: Collection[str]) -> None:
    """Refuse HTTP Basic logins past the failed-login limits, before any credentials check:
    call before the authentication hook is registered. ``known`` tells where a user logged in
    from; ``public`` endpoints are never limited.

    :raises ConfigError: the storage URI is not one Flask-Limiter knows.
    """
    config = app.config

    def exempt_address() -> bool:
        return request.endpoint in public or _basic_name() is None

    def exempt_user() -> bool:
        name = _basic_name()
        return request.endpoint in public or name is None or (name, client_address()) in known

    def login_failed(_response: Response) -> bool:
        return bool(g.get("login_failed"))

    def user_key() -> str:
        return _basic_name() or "-"

    limits = [
        ApplicationLimit(
            config["SCHEDULER_LOGIN_FAILURES_PER_ADDRESS"],
            key_function=client_address,
            scope="login-failures-per-address",
            exempt_when=exempt_address,
            deduct_when=login_failed,
            on_breach=_refusal("from this address"),
        ),
        ApplicationLimit(
            config["SCHEDULER_LOGIN_FAILURES_PER_USER"],
            key_function=user_key,
            scope="login-failures-per-user",
            exempt_when=exempt_user,
            deduct_when=login_failed,
            on_breach=_refusal("for this user"),
        ),
    ]
    storage = config["SCHEDULER_LOGIN_LIMITS_STORAGE"]
    limiter = Limiter(
        client_address,
        application_limits=limits,  # type: ignore[arg-type]
        storage_uri=storage,
        strategy="moving-window",
        in_memory_fallback_enabled=not storage.startswith("memory:"),
        # Every request is limited, an unknown route's too (Flask-Limiter skips a request
        # without an endpoint): guesses sent to a 404 count as well.
        request_identifier=lambda: request.endpoint or "-",
    )
    try:
        limiter.init_app(app)
    except ConfigurationError as exc:
        raise ConfigError(f"SCHEDULER_LOGIN_LIMITS_STORAGE has value {storage!r}: {exc}") from None
    app.extensions[EXTENSION_KEY] = limiter
