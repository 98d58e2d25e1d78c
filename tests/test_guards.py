"""SPEC §3 and §9 against hostile input, in the app: body size (413), cross-site browser
requests (403), JSON nesting (400), unreadable credentials (401); never a 500."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import SEED, assert_error
from tests.support.credentials import ADMIN

LIMIT = 4096  # SCHEDULER_MAX_BODY_BYTES in these tests
TOKEN = "t0ken-for-the-guards"


@pytest.fixture
def api(make_app: Callable[..., Flask]) -> FlaskClient:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    app = make_app(SCHEDULER_API_TOKENS=[{"name": "ci", "role": "admin", "token_sha256": digest}])
    return app.test_client()


@pytest.fixture
def small(make_app: Callable[..., Flask]) -> FlaskClient:
    """A client of an app that takes bodies of LIMIT bytes at most."""
    return make_app(SCHEDULER_MAX_BODY_BYTES=LIMIT).test_client()


def job_ids(client: FlaskClient) -> list[str]:
    return [job["id"] for job in client.get("/scheduler/jobs", headers=ADMIN).get_json()]


def padded(body: dict, size: int) -> bytes:
    """``body`` as JSON of exactly ``size`` bytes (trailing spaces are valid JSON)."""
    raw = json.dumps(body).encode()
    return raw + b" " * (size - len(raw))


# -- 413: a body over SCHEDULER_MAX_BODY_BYTES ----------------------------------------------


@pytest.mark.parametrize("headers", [{}, ADMIN], ids=["anonymous", "admin"])
def test_a_body_over_the_limit_is_413_before_anything_else(
    small: FlaskClient, headers: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scheduler_service.auth as auth

    checks: list[int] = []
    monkeypatch.setattr(auth, "check_password_hash", lambda *a: checks.append(1) or True)
    response = small.post("/scheduler/jobs", data=padded(SEED, LIMIT + 1), headers=headers)
    body = assert_error(response, 413)
    assert str(LIMIT) in body["error_message"]
    assert checks == []  # refused on its Content-Length, before the credentials were checked
    assert job_ids(small) == []


def test_the_default_limit_is_one_mebibyte(api: FlaskClient) -> None:
    assert_error(api.post("/scheduler/jobs", data=padded(SEED, 1024 * 1024 + 1)), 413)
    assert_error(
        api.post("/scheduler/jobs", data=padded(SEED, 1024 * 1024 + 1), headers=ADMIN), 413
    )
    response = api.post("/scheduler/jobs", data=padded(SEED, 1024 * 1024), headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_body_at_the_limit_is_accepted(small: FlaskClient) -> None:
    response = small.post("/scheduler/jobs", data=padded(SEED, LIMIT), headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_chunked_body_over_the_limit_is_413(small: FlaskClient) -> None:
    # No Content-Length: the server says where the body ends (wsgi.input_terminated), as
    # gunicorn does for a chunked body; it is cut at the limit while being read.
    response = small.post(
        "/scheduler/jobs",
        input_stream=io.BytesIO(padded(SEED, LIMIT * 4)),
        headers=ADMIN,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error(response, 413)
    assert job_ids(small) == []


# -- 403: cross-site browser requests; other clients' bodies are JSON whatever the type -------

CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "http://localhost:8080"},  # this host name, another port: another origin
    {"Origin": "null"},
    {"Origin": "http://[bad"},
]


@pytest.mark.parametrize("signal", CROSS_SITE, ids=lambda h: "-".join(h.values()))
@pytest.mark.parametrize("content_type", ["text/plain", None, "application/json"])
def test_a_cross_site_browser_request_is_403(
    api: FlaskClient, signal: dict, content_type: str | None
) -> None:
    headers = {**ADMIN, **signal}
    added = api.post(
        "/scheduler/jobs", data=json.dumps(SEED), headers=headers, content_type=content_type
    )
    assert "cross-site" in assert_error(added, 403)["error_message"]
    assert_error(api.post("/scheduler/shutdown", headers=headers, content_type=content_type), 403)
    assert job_ids(api) == []
    assert api.get("/scheduler", headers=ADMIN).get_json()["running"] is True


def test_cross_site_signals_refuse_every_unsafe_method(api: FlaskClient) -> None:
    assert api.post("/scheduler/jobs", json=SEED, headers=ADMIN).status_code == 200
    foreign = {**ADMIN, "Sec-Fetch-Site": "cross-site"}
    assert_error(api.delete("/scheduler/jobs/job2", headers=foreign), 403)
    assert_error(api.patch("/scheduler/jobs/job2", json={"seconds": 9}, headers=foreign), 403)
    assert_error(api.put("/api/v1/users/1", json={"name": "x"}, headers=foreign), 403)
    assert api.get("/scheduler/jobs/job2", headers=foreign).get_json()["seconds"] == 5  # reads pass
    # The same origin, a URL typed in the address bar, and clients that are not browsers pass.
    for n, signal in enumerate(
        [
            {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
            {"Sec-Fetch-Site": "none"},
            {"Origin": "http://localhost:80"},
            {},
        ]
    ):
        job = {**SEED, "id": f"ok{n}"}
        response = api.post("/scheduler/jobs", json=job, headers={**ADMIN, **signal})
        assert response.status_code == 200, (signal, response.get_data(as_text=True))


def test_curl_d_form_body_creates_a_job(api: FlaskClient) -> None:
    # curl -u admin:... -d '{"id": "job2", ...}' $API/jobs
    response = api.post(
        "/scheduler/jobs",
        data=json.dumps(SEED),
        headers=ADMIN,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert job_ids(api) == ["job2"]


# -- 400: JSON nested deeper than SCHEDULER_MAX_JSON_DEPTH -----------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/scheduler/jobs", lambda deep: f'{{"id": "x", "args": {deep}}}'),
        ("patch", "/scheduler/jobs/job2", lambda deep: f'{{"args": {deep}}}'),
        ("post", "/api/v1/blogs", lambda deep: f'{{"title": "t", "tags": {deep}}}'),
        ("post", "/api/v1/users", lambda deep: deep),
        ("post", "/scheduler/shutdown", lambda deep: deep),
    ],
)
def test_json_nested_1000_deep_is_400(
    api: FlaskClient, method: str, path: str, body: Callable[[str], str], caplog
) -> None:
    assert api.post("/scheduler/jobs", json=SEED, headers=ADMIN).status_code == 200
    with caplog.at_level(logging.ERROR):
        response = getattr(api, method)(path, data=body(nested(1000)), headers=ADMIN)
    assert "deep" in assert_error(response, 400)["error_message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no unhandled error
    assert api.get("/scheduler", headers=ADMIN).get_json()["running"] is True


def test_json_at_the_depth_limit_is_parsed(api: FlaskClient) -> None:
    # The job object is one level, its args list a second: 30 more reach the default 32.
    from scheduler_service.web import nesting_depth

    job = {**SEED, "args": [json.loads(nested(30))]}
    assert nesting_depth(json.dumps(job).encode()) == 32
    # Parsed and validated: refused only because print_test takes a string, not a list.
    at_limit = assert_error(api.post("/scheduler/jobs", json=job, headers=ADMIN), 400)
    assert "deep" not in at_limit["error_message"] and "args.0" in at_limit["errors"]
    deeper = {**SEED, "id": "deeper", "args": [json.loads(nested(31))]}
    refused = assert_error(api.post("/scheduler/jobs", json=deeper, headers=ADMIN), 400)
    assert "deep" in refused["error_message"]


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets in a string do not count
        (b'["a\\"[[[", ["\\\\"], "]]]"]', 2),  # nor do escaped quotes end the string
        (b'"unterminated [[[', 0),
        (b"]]]", 0),
        (nested(5000).encode(), 5000),
    ],
)
def test_nesting_depth(raw: bytes, depth: int) -> None:
    from scheduler_service.web import nesting_depth

    assert nesting_depth(raw) == depth


def test_utf16_json_is_checked_for_depth_too(api: FlaskClient) -> None:
    raw = ('{"id": "x", "args": ' + nested(1000) + "}").encode("utf-16")
    assert (
        "deep"
        in assert_error(api.post("/scheduler/jobs", data=raw, headers=ADMIN), 400)["error_message"]
    )


# -- 401: credentials that cannot be read ---------------------------------------------------


UNREADABLE = [
    "Basic \xff\xfe\xc3\xa9",  # raw bytes, as a WSGI server hands them over (latin-1)
    "Basic YWRtaW46\xe9",
    "Basic !!!",
    "Basic " + base64.b64encode(b"\xff\xfe:password").decode(),  # not UTF-8
    "Bearer \xff\xfe",
    "Bearer t0ken\xe9",
]


def test_unreadable_credentials_are_401_without_a_traceback(api: FlaskClient, caplog) -> None:
    with caplog.at_level(logging.ERROR):
        for authorization in UNREADABLE:
            response = api.get("/scheduler/jobs", headers={"Authorization": authorization})
            assert_error(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert not caplog.records
    assert (
        api.get("/scheduler/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )
