"""SPEC §9: failed logins are limited per client address and per user (429 with Retry-After),
and password checks are bounded in number (503 beyond), in the app."""

from __future__ import annotations

import hashlib
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import scheduler_service.auth as auth
from scheduler_service.errors import ConfigError
from tests.support.api import assert_error
from tests.support.backends import service_url
from tests.support.credentials import ADMIN, OPERATOR, PASSWORDS, basic
from tests.support.waiting import wait_for

TOKEN = "t0ken-for-the-throttle-tests"
MANY = "10000/minute"  # a limit these tests never reach


def token_entry() -> list[dict[str, str]]:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    return [{"name": "ci", "role": "admin", "token_sha256": digest}]


def get(client: FlaskClient, headers: dict, address: str = "127.0.0.1") -> TestResponse:
    return client.get("/scheduler/jobs", headers=headers, environ_base={"REMOTE_ADDR": address})


def assert_429(response: TestResponse, who: str, window: int = 60) -> int:
    """Check a 429 naming ``who``, whose Retry-After is within the limit's ``window``."""
    body = assert_error(response, 429)
    assert who in body["error_message"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window
    assert f"retry in {retry_after} s" in body["error_message"]
    return retry_after


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords checked against a hash, in order."""
    checked: list[str] = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: checked.append(p) or real(h, p))
    return checked


# -- per address ------------------------------------------------------------------------------


def test_failed_logins_from_one_address_are_429_with_retry_after(
    client: FlaskClient, hashes: list[str]
) -> None:
    for _ in range(10):  # the default: 10 a minute
        assert_error(get(client, basic("admin", "guess"), "10.0.0.1"), 401)
    assert len(hashes) == 10
    assert_429(get(client, basic("admin", "guess"), "10.0.0.1"), "from this address")
    assert_429(get(client, basic("operator", "other"), "10.0.0.1"), "from this address")
    # Refused before its password is looked at: a right one too, so a 429 tells nothing.
    assert_429(get(client, ADMIN, "10.0.0.1"), "from this address")
    assert len(hashes) == 10
    # Other addresses, and tokens from this one, are not refused.
    assert get(client, ADMIN, "10.0.0.2").status_code == 200
    assert get(client, {"Authorization": "Bearer nope"}, "10.0.0.1").status_code == 401


def test_only_failed_logins_count(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        SCHEDULER_LOGIN_FAILURES_PER_ADDRESS="3/minute", SCHEDULER_API_TOKENS=token_entry()
    )
    client = app.test_client()
    for _ in range(10):
        assert get(client, ADMIN).status_code == 200  # successes
        assert get(client, {}).status_code == 401  # a challenge: no credentials sent
        assert get(client, {"Authorization": "Bearer wrong"}).status_code == 401  # tokens
        assert client.get("/healthz", headers=basic("admin", "x")).status_code == 200
    for _ in range(3):
        assert get(client, basic("admin", "guess")).status_code == 401
    assert_429(get(client, basic("admin", "guess")), "from this address")
    # A valid token is never refused, from a throttled address either.
    assert get(client, {"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/healthz", headers=basic("admin", "x")).status_code == 200


def test_guesses_on_unknown_routes_count_too(make_app: Callable[..., Flask]) -> None:
    client = make_app(SCHEDULER_LOGIN_FAILURES_PER_ADDRESS="2/minute").test_client()
    for _ in range(2):
        assert_error(client.get("/no/such/route", headers=basic("admin", "guess")), 401)
    assert_429(client.get("/no/such/route", headers=basic("admin", "guess")), "address")
    assert_429(get(client, basic("admin", "guess")), "from this address")


# -- per user ---------------------------------------------------------------------------------


def guess_from_many_addresses(client: FlaskClient, user: str, prefix: str, times: int) -> None:
    """Fail ``times`` logins as ``user``, each from an address of its own."""
    for n in range(times):
        address = f"{prefix}.{n // 250}.{n % 250}"
        assert_error(get(client, basic(user, f"guess-{n}"), address), 401)


def test_failed_logins_for_one_user_are_429_from_any_new_address(
    client: FlaskClient, hashes: list[str]
) -> None:
    guess_from_many_addresses(client, "operator", "10.1", 100)  # the default: 100 an hour
    assert_429(get(client, basic("operator", "guess"), "10.2.0.1"), "for this user", 3600)
    assert_429(get(client, OPERATOR, "10.2.0.2"), "for this user", 3600)  # right or wrong alike
    assert len(hashes) == 100
    assert get(client, ADMIN, "10.2.0.1").status_code == 200  # other users are not limited


def test_a_user_is_not_locked_out_where_they_logged_in_before(
    client: FlaskClient, hashes: list[str]
) -> None:
    assert get(client, OPERATOR, "10.3.0.9").status_code == 200  # the operator's machine
    guess_from_many_addresses(client, "operator", "10.4", 100)  # the attacker's
    assert_429(get(client, basic("operator", "guess"), "10.5.0.1"), "for this user", 3600)
    # The operator's machine is not refused, with credentials not in the cache either.
    new_hash = auth.generate_password_hash("a-new-operator-pass", method="pbkdf2:sha256:1000")
    client.application.extensions[auth.EXTENSION_KEY].set_users(
        {"operator": (new_hash, "operator")}
    )
    assert get(client, basic("operator", "a-new-operator-pass"), "10.3.0.9").status_code == 200
    assert hashes[-1] == "a-new-operator-pass"


# -- how many password checks at once ----------------------------------------------------------


class SlowHashes:
    """check_password_hash that blocks until released, counting the calls under way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.running = 0
        self._lock = threading.Lock()
        real = auth.check_password_hash

        def slow(password_hash: str, password: str) -> bool:
            with self._lock:
                self.running += 1
            try:
                assert self.release.wait(30)
                return real(password_hash, password)
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(auth, "check_password_hash", slow)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as executor:
        yield executor


def test_password_checks_past_the_bound_are_503_at_once(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, pool: ThreadPoolExecutor
) -> None:
    app = make_app(
        SCHEDULER_LOGIN_FAILURES_PER_ADDRESS=MANY,
        SCHEDULER_PASSWORD_CHECKS=1,
        SCHEDULER_PASSWORD_CHECK_WAIT=30,
        SCHEDULER_API_TOKENS=token_entry(),
    )
    client = app.test_client()
    assert get(client, ADMIN).status_code == 200  # verified: in the cache from now on
    slow = SlowHashes(monkeypatch)

    def attempt(n: int) -> Future[TestResponse]:
        return pool.submit(get, app.test_client(), basic("nobody", f"guess-{n}"))

    hashing = attempt(1)
    wait_for(lambda: slow.running == 1, what="one hash under way")
    waiting = attempt(2)  # takes the one place in the queue, waits its turn
    wait_for(lambda: app.extensions[auth.EXTENSION_KEY]._checks._inside._value == 0)
    refused = attempt(3).result(timeout=10)  # no place left: refused at once
    assert_error(refused, 503)
    assert refused.headers["Retry-After"] == "1"
    # Verified credentials and tokens are served meanwhile: they never wait for a hash.
    assert get(client, ADMIN).status_code == 200
    assert get(client, {"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert slow.running == 1 and not hashing.done() and not waiting.done()
    slow.release.set()
    assert_error(hashing.result(timeout=10), 401)
    assert_error(waiting.result(timeout=10), 401)  # it got its turn


def test_a_check_waits_for_its_turn_a_bounded_time(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, pool: ThreadPoolExecutor
) -> None:
    app = make_app(
        SCHEDULER_LOGIN_FAILURES_PER_ADDRESS=MANY,
        SCHEDULER_PASSWORD_CHECKS=1,
        SCHEDULER_PASSWORD_CHECK_WAIT=0.2,
    )
    slow = SlowHashes(monkeypatch)
    hashing = pool.submit(get, app.test_client(), basic("admin", "guess-1"))
    wait_for(lambda: slow.running == 1, what="one hash under way")
    # The same credentials (waiting on their own lock) and others (waiting for a turn).
    same = pool.submit(get, app.test_client(), basic("admin", "guess-1")).result(timeout=10)
    other = pool.submit(get, app.test_client(), basic("admin", "guess-2")).result(timeout=10)
    for refused in (same, other):
        assert_error(refused, 503)
        assert refused.headers["Retry-After"] == "1"
    assert not hashing.done()  # both gave up while the hash still ran
    slow.release.set()
    assert_error(hashing.result(timeout=10), 401)


def test_503_busy_is_not_a_failed_login(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, pool: ThreadPoolExecutor
) -> None:
    app = make_app(
        SCHEDULER_LOGIN_FAILURES_PER_ADDRESS="2/minute",
        SCHEDULER_PASSWORD_CHECKS=1,
        SCHEDULER_PASSWORD_CHECK_WAIT=0,
    )
    slow = SlowHashes(monkeypatch)
    hashing = pool.submit(get, app.test_client(), basic("admin", "guess-0"))
    wait_for(lambda: slow.running == 1, what="one hash under way")
    for n in range(1, 5):
        assert_error(get(app.test_client(), basic("admin", f"guess-{n}")), 503)
    slow.release.set()
    assert_error(hashing.result(timeout=10), 401)  # the first failure
    assert get(app.test_client(), basic("admin", PASSWORDS["admin"])).status_code == 200


# -- settings and storage ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("SCHEDULER_LOGIN_FAILURES_PER_ADDRESS", "ten a minute", "not a rate limit"),
        ("SCHEDULER_LOGIN_FAILURES_PER_USER", "0/minute", "not a rate limit"),
        ("SCHEDULER_LOGIN_LIMITS_STORAGE", "nosuch://user:s3cret@host", "nosuch://"),
        ("SCHEDULER_PASSWORD_CHECKS", 0, "greater than or equal to 1"),
        ("SCHEDULER_MAX_BODY_BYTES", 10, "greater than or equal to 1024"),
        ("SCHEDULER_MAX_JSON_DEPTH", 1, "greater than or equal to 2"),
    ],
)
def test_bad_limit_settings_are_refused_naming_the_key(
    make_app: Callable[..., Flask], key: str, value: object, problem: str
) -> None:
    with pytest.raises(ConfigError, match=rf"{key}.*{problem}") as info:
        make_app(**{key: value})
    assert "s3cret" not in str(info.value)


def test_a_shared_storage_counts_for_every_process(make_app: Callable[..., Flask]) -> None:
    url = service_url("TEST_REDIS_URL")
    address = f"10.77.{secrets.randbelow(250)}.{secrets.randbelow(250)}"  # this test's own keys
    settings = {
        "SCHEDULER_LOGIN_FAILURES_PER_ADDRESS": "3/minute",
        "SCHEDULER_LOGIN_LIMITS_STORAGE": url,
    }
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    for client in (one, two, one):
        assert_error(get(client, basic("admin", "guess"), address), 401)
    assert_429(get(two, basic("admin", "guess"), address), "from this address")


def test_an_unreachable_storage_falls_back_to_memory(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = make_app(
        SCHEDULER_LOGIN_FAILURES_PER_ADDRESS="2/minute",
        SCHEDULER_LOGIN_LIMITS_STORAGE=f"redis://127.0.0.1:{port}/0",
    ).test_client()
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert_error(get(client, basic("admin", "guess")), 401)
        assert_429(get(client, basic("admin", "guess")), "from this address")
    assert get(client, ADMIN, "10.0.0.8").status_code == 200
    assert [r for r in caplog.records if "cannot be reached" in r.getMessage()]
