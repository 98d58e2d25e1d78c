"""SPEC §4: HTTP Basic and bearer tokens, hashed secrets, roles per route, the check cache."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from scheduler_service import auth
from scheduler_service.errors import ConfigError
from tests.support.api import JOB
from tests.support.credentials import ADMIN, OPERATOR, PASSWORDS, VIEWER, basic
from tests.support.waiting import wait_for


def test_missing_credentials_are_401_with_challenge(client: FlaskClient) -> None:
    response = client.get("/scheduler/jobs")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="scheduler-service"')
    assert response.get_json()["code"] == 401


@pytest.mark.parametrize(
    "headers",
    [
        basic("admin", "wrong"),
        basic("nobody", PASSWORDS["admin"]),
        basic("admin", ""),
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest username=admin"},
    ],
)
def test_wrong_credentials_are_401(client: FlaskClient, headers: dict) -> None:
    response = client.get("/scheduler/jobs", headers=headers)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_unknown_routes_need_auth_too(client: FlaskClient) -> None:
    assert client.get("/scheduler/secret-route").status_code == 401


def test_health_probes_need_no_auth(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "viewer", "operator"),
    [
        ("get", "/scheduler", 200, 200),
        ("get", "/scheduler/jobs", 200, 200),
        ("get", "/scheduler/jobs/a", 200, 200),
        ("get", "/scheduler/tasks", 200, 200),
        ("post", "/scheduler/jobs/a/pause", 403, 200),
        ("post", "/scheduler/jobs/a/resume", 403, 200),
        ("post", "/scheduler/jobs/a/run", 403, 202),
        ("post", "/scheduler/pause", 403, 204),
        ("post", "/scheduler/resume", 403, 204),
        ("post", "/scheduler/jobs", 403, 403),
        ("patch", "/scheduler/jobs/a", 403, 403),
        ("delete", "/scheduler/jobs/a", 403, 403),
        ("post", "/scheduler/shutdown", 403, 403),
        ("post", "/scheduler/start", 403, 403),
    ],
)
def test_roles(client: FlaskClient, method: str, path: str, viewer: int, operator: int) -> None:
    assert client.post("/scheduler/jobs", json=JOB, headers=ADMIN).status_code == 200
    body = {"json": {**JOB, "id": "b"}} if path == "/scheduler/jobs" else {}
    if method == "patch":
        body = {"json": {"args": ["y"]}}
    as_viewer = getattr(client, method)(path, headers=VIEWER, **body)
    assert as_viewer.status_code == viewer
    if viewer == 403:
        assert as_viewer.get_json()["code"] == 403
    assert getattr(client, method)(path, headers=OPERATOR, **body).status_code == operator
    # A refused request changed nothing.
    job = client.get("/scheduler/jobs/a", headers=ADMIN).get_json()
    assert job["args"] == ["x"]
    if operator == 403:
        assert client.get("/scheduler/jobs", headers=ADMIN).headers["X-Total-Count"] == "1"


def test_bearer_token_with_role(make_app: Callable[..., Flask]) -> None:
    token = "t0ken-for-the-ci-pipeline"
    app = make_app(
        SCHEDULER_API_TOKENS=[
            {
                "name": "ci",
                "role": "operator",
                "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
            }
        ]
    )
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/scheduler/jobs", headers=bearer).status_code == 200
    assert client.post("/scheduler/pause", headers=bearer).status_code == 204
    assert client.post("/scheduler/jobs", json=JOB, headers=bearer).status_code == 403


def test_verified_password_is_cached_not_rehashed(app: Flask, monkeypatch) -> None:
    calls = []
    import scheduler_service.auth as auth

    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: calls.append(1) or real(h, p))
    client = app.test_client()
    for _ in range(5):
        assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 200
    assert len(calls) == 1
    # A wrong password is never served from the cache, and is checked every time.
    for _ in range(2):
        assert client.get("/scheduler/jobs", headers=basic("admin", "nope")).status_code == 401
    assert len(calls) == 3


def test_cache_can_be_turned_off(make_app: Callable[..., Flask], monkeypatch) -> None:
    import scheduler_service.auth as auth

    calls = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: calls.append(1) or real(h, p))
    client = make_app(SCHEDULER_AUTH_CACHE_TTL=0).test_client()
    for _ in range(3):
        client.get("/scheduler/jobs", headers=ADMIN)
    assert len(calls) == 3


def _hash(password: str) -> str:
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


def _count_hash_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: calls.append(1) or real(h, p))
    return calls


def test_changed_password_stops_working_at_once(app: Flask, monkeypatch) -> None:
    client = app.test_client()
    assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 200  # now cached
    calls = _count_hash_checks(monkeypatch)
    app.extensions[auth.EXTENSION_KEY].set_users({"admin": (_hash("a-new-pass-42"), "admin")})
    assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 401
    assert client.get("/scheduler/jobs", headers=basic("admin", "a-new-pass-42")).status_code == 200
    assert len(calls) == 2  # the old password was checked again, not served from the cache


def test_revoked_user_and_changed_role_take_effect_at_once(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/scheduler/pause", headers=OPERATOR).status_code == 204  # cached
    assert client.get("/scheduler/jobs", headers=VIEWER).status_code == 200  # cached
    operator_hash = _hash(PASSWORDS["operator"])
    app.extensions[auth.EXTENSION_KEY].set_users({"operator": (operator_hash, "viewer")})
    assert client.get("/scheduler/jobs", headers=VIEWER).status_code == 401
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 403


def test_password_changed_during_its_check_is_not_cached(app: Flask, monkeypatch) -> None:
    authenticator = app.extensions[auth.EXTENSION_KEY]
    real = auth.check_password_hash

    def check_then_change(password_hash: str, password: str) -> bool:
        ok = real(password_hash, password)
        authenticator.set_users({"admin": (_hash("a-new-pass-42"), "admin")})
        return ok

    monkeypatch.setattr(auth, "check_password_hash", check_then_change)
    client = app.test_client()
    assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 200  # raced the change
    monkeypatch.setattr(auth, "check_password_hash", real)
    assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 401


def test_concurrent_checks_of_new_credentials_hash_once(
    make_app: Callable[..., Flask], monkeypatch
) -> None:
    # Four checks at once fit the default bound (two hashing, two waiting); the waits are long
    # enough for a loaded machine.
    app = make_app(SCHEDULER_PASSWORD_CHECKS=2, SCHEDULER_PASSWORD_CHECK_WAIT=30)
    authenticator = app.extensions[auth.EXTENSION_KEY]
    credentials = ADMIN["Authorization"].split(" ", 1)[1]
    release = threading.Event()
    calls = []
    real = auth.check_password_hash

    def slow_check(password_hash: str, password: str) -> bool:
        calls.append(1)
        assert release.wait(10)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "check_password_hash", slow_check)
    with ThreadPoolExecutor(4) as pool:
        checks = [pool.submit(authenticator.check_basic, credentials) for _ in range(4)]
        # All four are in: one hashing, three queued behind it on these credentials' lock.
        wait_for(
            lambda: sum(entry[1] for entry in authenticator._checking.values()) == 4,
            what="four checks of the same credentials under way",
        )
        release.set()
        names = [check.result(timeout=10).name for check in checks]
    assert names == ["admin"] * 4
    assert len(calls) == 1
    assert authenticator._checking == {}  # the per-credentials lock is gone with its users


def test_cache_is_bounded_least_recently_used_first(
    make_app: Callable[..., Flask], monkeypatch
) -> None:
    client = make_app(SCHEDULER_AUTH_CACHE_SIZE=2).test_client()
    calls = _count_hash_checks(monkeypatch)
    for headers in (ADMIN, OPERATOR, VIEWER):  # admin drops out when viewer comes in
        assert client.get("/scheduler/jobs", headers=headers).status_code == 200
    assert len(calls) == 3
    assert client.get("/scheduler/jobs", headers=VIEWER).status_code == 200
    assert len(calls) == 3
    assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 200
    assert len(calls) == 4


def test_known_user_is_checked_without_the_dummy_hash(app: Flask, monkeypatch) -> None:
    made = []
    real = auth.generate_password_hash
    monkeypatch.setattr(auth, "generate_password_hash", lambda p: made.append(1) or real(p))
    client = app.test_client()
    assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 200
    assert made == []  # a known user's first check runs one hash, not two
    for _ in range(2):
        assert client.get("/scheduler/jobs", headers=basic("nobody", "x")).status_code == 401
    assert len(made) == 1  # an unknown user is checked against one dummy hash, made once


def test_plain_admin_password_is_hashed_and_dropped(make_app: Callable[..., Flask]) -> None:
    app = make_app(SCHEDULER_ADMIN_PASSWORD_HASH=None, SCHEDULER_ADMIN_PASSWORD="a-strong-one-42")
    assert app.config["SCHEDULER_ADMIN_PASSWORD"] is None
    client = app.test_client()
    assert client.get("/scheduler", headers=basic("admin", "a-strong-one-42")).status_code == 200


@pytest.mark.parametrize("password", ["admin", "password", "short", "changeme"])
def test_weak_admin_password_refused_outside_dev_mode(
    make_app: Callable[..., Flask], password: str
) -> None:
    with pytest.raises(ConfigError, match="SCHEDULER_ADMIN_PASSWORD") as info:
        make_app(SCHEDULER_ADMIN_PASSWORD_HASH=None, SCHEDULER_ADMIN_PASSWORD=password)
    assert repr(password) not in str(info.value)  # the value itself is never echoed


def test_weak_password_allowed_in_dev_mode(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        SCHEDULER_ADMIN_PASSWORD_HASH=None,
        SCHEDULER_ADMIN_PASSWORD="admin",
        SCHEDULER_DEV_MODE=True,
    )
    assert app.test_client().get("/scheduler", headers=basic("admin", "admin")).status_code == 200


def test_no_credentials_refused(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="no user can log in"):
        make_app(SCHEDULER_ADMIN_PASSWORD_HASH=None, SCHEDULER_USERS=[])


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("SCHEDULER_USERS", [{"name": "x", "password_hash": "h", "role": "root"}], "role"),
        ("SCHEDULER_USERS", [{"name": "x", "password": "plain"}], "password_hash"),
        (
            "SCHEDULER_API_TOKENS",
            [{"name": "x", "token_sha256": "abc", "role": "admin"}],
            "token_sha256",
        ),
    ],
)
def test_malformed_users_and_tokens_refused(
    make_app: Callable[..., Flask], key: str, value: list, needle: str
) -> None:
    with pytest.raises(ConfigError, match=rf"{key}\[0\].*{needle}"):
        make_app(**{key: value})
