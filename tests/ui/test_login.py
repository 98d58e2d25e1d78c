"""Signing in with the form: a signed session cookie that the pages and the JSON API take."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from scheduler_service.auth import EXTENSION_KEY
from tests.support.api import JOB, add_job
from tests.support.credentials import PASSWORD_HASHES, PASSWORDS, VIEWER
from tests.ui.page import page, parse, sign_in


def test_a_page_redirects_to_sign_in_and_back(client: FlaskClient) -> None:
    response = client.get("/ui/jobs?page=2")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/ui/login?next=")
    form = page(client, response.headers["Location"]).one("form", id="login")
    assert form.one("input", name="next")["value"] == "/ui/jobs?page=2"
    form.one("input", name="username")
    form.one("input", name="password")
    form.one("button", type="submit")
    response = client.post(
        "/ui/login",
        data={"username": "viewer", "password": PASSWORDS["viewer"], "next": "/ui/jobs?page=2"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/jobs?page=2"
    whoami = page(client, "/ui/jobs?page=2").one(id="whoami").text()
    assert "viewer" in whoami


def test_the_root_redirects_to_the_jobs_page(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/jobs"


def test_the_api_still_answers_401_json(client: FlaskClient) -> None:
    response = client.get("/scheduler/jobs")
    assert response.status_code == 401
    assert response.is_json


def test_the_cookie_is_httponly_strict_and_secure_on_https(client: FlaskClient) -> None:
    response = client.post(
        "/ui/login",
        data={"username": "admin", "password": PASSWORDS["admin"]},
        base_url="https://localhost",
    )
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("scheduler_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" in cookie
    plain = FlaskClient(client.application, use_cookies=True)
    response = plain.post("/ui/login", data={"username": "admin", "password": PASSWORDS["admin"]})
    assert "Secure" not in response.headers["Set-Cookie"]


def test_a_wrong_password_shows_the_form_again(client: FlaskClient) -> None:
    for name, password in (("admin", "wrong"), ("nobody", "wrong")):
        response = client.post("/ui/login", data={"username": name, "password": password})
        assert response.status_code == 401
        assert "WWW-Authenticate" not in response.headers  # no browser dialog
        assert "Set-Cookie" not in response.headers
        alert = parse(response.get_data(as_text=True)).one(role="alert")
        assert alert.text() == "wrong user name or password"
    assert client.get("/scheduler/jobs").status_code == 401


def test_failed_logins_are_limited_as_for_http_basic(make_app: Callable[..., Flask]) -> None:
    client = make_app(SCHEDULER_LOGIN_FAILURES_PER_ADDRESS="2/minute").test_client()
    for _ in range(2):
        assert (
            client.post("/ui/login", data={"username": "admin", "password": "x"}).status_code == 401
        )
    response = client.post("/ui/login", data={"username": "admin", "password": PASSWORDS["admin"]})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    alert = parse(response.get_data(as_text=True)).one(role="alert").text()
    assert "too many failed logins" in alert and "retry in" in alert
    # One count for both ways in: HTTP Basic from this address is refused too.
    assert client.get("/scheduler/jobs", headers=VIEWER).status_code == 429


def test_next_must_be_a_local_path(client: FlaskClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        response = client.post(
            "/ui/login",
            data={"username": "admin", "password": PASSWORDS["admin"], "next": target},
        )
        assert response.headers["Location"] == "/ui/jobs", target


def test_the_session_works_for_the_json_api(client: FlaskClient) -> None:
    sign_in(client, "admin")
    response = client.post("/scheduler/jobs", json=JOB)
    assert response.status_code == 200
    assert client.get("/scheduler/jobs").get_json()[0]["id"] == JOB["id"]


def test_a_viewer_session_has_the_viewer_role_in_the_api(client: FlaskClient) -> None:
    sign_in(client, "viewer")
    assert client.get("/scheduler/jobs").status_code == 200
    assert client.post("/scheduler/jobs", json=JOB).status_code == 403


def test_sign_out_ends_the_session(client: FlaskClient) -> None:
    sign_in(client, "operator")
    page(client, "/ui/jobs").one("form", id="logout").one("button", type="submit")
    response = client.post("/ui/logout")
    assert response.status_code == 303
    assert client.get("/scheduler/jobs").status_code == 401
    assert client.get("/ui/jobs").status_code == 303


def test_a_removed_user_or_changed_role_takes_effect_at_once(app: Flask) -> None:
    add_job(app.test_client(), JOB)
    operator, viewer = app.test_client(), app.test_client()
    sign_in(operator, "operator")
    sign_in(viewer, "viewer")
    assert page(operator, "/ui/jobs").all("button", data_action="pause")
    authenticator = app.extensions[EXTENSION_KEY]
    authenticator.set_users(
        {
            "admin": (PASSWORD_HASHES["admin"], "admin"),
            "operator": (PASSWORD_HASHES["operator"], "viewer"),  # demoted
        }  # viewer removed
    )
    assert page(operator, "/ui/jobs").all("button", data_action="pause") == []
    assert operator.post(f"/scheduler/jobs/{JOB['id']}/pause").status_code == 403
    assert viewer.get("/scheduler/jobs").status_code == 401
    assert viewer.get("/ui/jobs").status_code == 303


def test_a_changed_password_ends_the_session(app: Flask) -> None:
    client = app.test_client()
    sign_in(client, "viewer")
    authenticator = app.extensions[EXTENSION_KEY]
    authenticator.set_users(
        {
            "admin": (PASSWORD_HASHES["admin"], "admin"),
            "viewer": (PASSWORD_HASHES["operator"], "viewer"),  # another password
        }
    )
    assert client.get("/scheduler/jobs").status_code == 401


def test_a_sign_in_ends_after_its_lifetime(client: FlaskClient) -> None:
    sign_in(client, "viewer")
    with client.session_transaction() as session:
        session["since"] = time.time() - 12 * 3600 - 1  # the default lifetime, 12 h
    assert client.get("/scheduler/jobs").status_code == 401


def test_the_generated_key_is_kept_private_and_survives_a_restart(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    client = make_app().test_client()
    sign_in(client, "viewer")
    key_file = tmp_path / "instance" / "secret-key"
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    restarted = make_app()
    assert restarted.secret_key == key_file.read_text()
    cookie = client.get_cookie("scheduler_session")
    assert cookie is not None
    other = restarted.test_client()
    other.set_cookie("scheduler_session", cookie.value)
    assert other.get("/scheduler/jobs").status_code == 200


def test_a_set_secret_key_is_used_and_not_kept_in_the_config(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(SCHEDULER_SECRET_KEY="k" * 32)
    assert app.secret_key == "k" * 32
    assert app.config["SCHEDULER_SECRET_KEY"] is None
    assert not (tmp_path / "instance" / "secret-key").exists()
