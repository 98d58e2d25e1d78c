"""Limits on logging in: failed logins per client address and per user (``limits``, the
engine of Flask-Limiter), and how many password hashes run at once. No routes: ``auth.py``
calls these while it authenticates a request.

A wrong password costs a scrypt run (about 100 ms of CPU and 32 MiB), and anyone who reaches
the port may send one. So:

- **Failed logins are counted per address and per user name** (``SCHEDULER_LOGIN_FAILURES_*``,
  moving windows). A login over either limit is answered 429 with ``Retry-After`` before its
  password is looked at, so the answer never tells whether a guess was right. Only failed HTTP
  Basic logins count: a success, a request without credentials, a 429 or a 503 does not.
- **The per-user limit cannot lock a user out of their own machines.** It does not apply from
  an address where that user logged in successfully in the last day (``KnownAddresses``): an
  attacker guessing from elsewhere is refused, the user is not. Whether it applies is decided
  before the password is looked at. The per-address limit is the tighter one and applies to
  everyone, so a user who shares an address with an attacker (one NAT) is refused with them.
- **Bearer tokens are neither counted nor refused:** a token is a 256-bit random secret checked
  with one SHA-256; there is nothing to guess and nothing costly to repeat.
- **At most SCHEDULER_PASSWORD_CHECKS hashes run at once** (``PasswordChecks``), and as many
  checks again may wait for a turn, each up to SCHEDULER_PASSWORD_CHECK_WAIT seconds; any other
  check is answered 503 at once. Password checks thus hold at most twice that many request
  threads, whatever the load, and the other threads serve tokens and verified credentials (the
  authenticator's cache), which never wait for a hash.

Why ``limits`` and not Flask-Limiter's request hooks, which run on ``limits``: the hooks
resolve route limits on every request, about 0.4 ms each (three times what a refused login
costs without them), while these limits concern only the Basic logins that ``auth.py`` reads.

Counts live in a ``limits`` storage: ``memory://`` counts in each process, so N gunicorn
workers or replicas allow N times the limits; a ``redis://`` URI shares them (while it cannot
be reached, each process counts in memory and says so in its log). Checks made at the same
instant may each get past a limit before any of their failures is counted: the overshoot is at
most the number of checks under way (see above).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from operator import methodcaller
from typing import Any

from flask import request
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .errors import ConfigError, ServiceUnavailable, TooManyRequests

log = logging.getLogger(__name__)
# A user's address stays known this long after their last successful login, at most this many
# (user, address) pairs (least recently seen out first).
KNOWN_ADDRESS_TTL = 24 * 3600.0
KNOWN_ADDRESS_SIZE = 10_000
# Seconds to count in memory after the shared storage failed, before trying it again.
STORAGE_RETRY = 30.0
_REDIS_TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}


def basic_credentials(value: str) -> tuple[str, str] | None:
    """Return (name, password) from the base64 of HTTP Basic, or None when it is not base64
    of UTF-8 (raw non-ASCII bytes included)."""
    try:
        name, _, password = base64.b64decode(value.encode("ascii")).decode().partition(":")
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        return None
    return name, password


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


class LoginLimits:
    """Count failed logins per client address and per user name; refuse logins past them."""

    def __init__(self, *, per_address: str, per_user: str, storage_uri: str) -> None:
        self._per_address = parse_many(per_address)
        self._per_user = parse_many(per_user)
        self._memory = MovingWindowRateLimiter(storage_from_string("memory://"))
        self._shared = self._memory
        if not storage_uri.startswith("memory:"):
            # A login must not hang on a storage that stopped answering.
            options = _REDIS_TIMEOUTS if storage_uri.startswith(("redis", "rediss")) else {}
            try:
                storage = storage_from_string(storage_uri, wrap_exceptions=True, **options)
                self._shared = MovingWindowRateLimiter(storage)
            except (ConfigurationError, NotImplementedError) as exc:
                scheme = storage_uri.partition("://")[0]
                cause = str(exc).replace(storage_uri, f"{scheme}://...")  # it may hold a password
                raise ConfigError(
                    f"SCHEDULER_LOGIN_LIMITS_STORAGE: cannot count failed logins in {scheme}://: "
                    f"{cause or 'it has no moving windows'}"
                ) from None
        self._memory_until = 0.0  # monotonic time until which the shared storage is skipped
        self.known = KnownAddresses()

    def check(self, *, address: str, name: str | None) -> None:
        """Refuse a login from ``address`` as ``name`` past a limit.

        :raises TooManyRequests: with Retry-After, naming the limit.
        """
        self._refuse_past(self._per_address, ("address", address), "from this address")
        if name is not None and (name, address) not in self.known:
            self._refuse_past(self._per_user, ("user", name), "for this user")

    def failed(self, *, address: str, name: str | None) -> None:
        """Count a failed login from ``address`` (as ``name``, if one could be read)."""
        for item in self._per_address:
            self._call(methodcaller("hit", item, "address", address))
        for item in self._per_user if name is not None else ():
            self._call(methodcaller("hit", item, "user", name))

    def succeeded(self, *, address: str, name: str) -> None:
        """Remember that ``name`` logged in from ``address``."""
        self.known.add(name, address)

    def _refuse_past(self, items: list[RateLimitItem], key: tuple[str, str], who: str) -> None:
        for item in items:
            if not self._call(methodcaller("test", item, *key)):
                reset = self._call(methodcaller("get_window_stats", item, *key))
                retry = max(1, math.ceil(reset[0] - time.time()))
                raise TooManyRequests(
                    f"too many failed logins {who}; retry in {retry} s",
                    headers={"Retry-After": str(retry)},
                )

    def _call(self, operation: Callable[[MovingWindowRateLimiter], Any]) -> Any:
        if self._shared is not self._memory and time.monotonic() >= self._memory_until:
            try:
                return operation(self._shared)
            except StorageError as exc:
                log.warning(
                    "SCHEDULER_LOGIN_LIMITS_STORAGE cannot be reached (%s): counting failed "
                    "logins in this process for %.0f s",
                    type(exc.storage_error).__name__,
                    STORAGE_RETRY,
                )
                self._memory_until = time.monotonic() + STORAGE_RETRY
        return operation(self._memory)
