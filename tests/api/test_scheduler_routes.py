"""Scheduler info and control routes, and the health probes."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scheduler_service.errors import ConfigError
from tests.support.api import JOB
from tests.support.credentials import ADMIN, OPERATOR
from tests.support.waiting import wait_for


def info(client: FlaskClient) -> dict:
    return client.get("/scheduler", headers=ADMIN).get_json()


def test_info_has_flask_apscheduler_keys_and_extras(client: FlaskClient) -> None:
    data = info(client)
    assert list(data)[:3] == ["current_host", "allowed_hosts", "running"]
    assert data["allowed_hosts"] == ["*"]
    assert data["running"] is True
    assert data["state"] == "paused"  # the test settings start paused
    assert data["jobstores"][0]["alias"] == "default"
    assert set(data["executors"]) == {"default", "process"}


def test_pause_and_resume(client: FlaskClient) -> None:
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204
    assert info(client)["state"] == "running" and info(client)["firing"] is True
    assert client.post("/scheduler/pause", headers=OPERATOR).status_code == 204
    assert info(client)["state"] == "paused" and info(client)["firing"] is False


def test_shutdown_then_start(client: FlaskClient) -> None:
    client.post("/scheduler/jobs", json=JOB, headers=ADMIN)
    assert client.post("/scheduler/start", headers=ADMIN).status_code == 409
    assert (
        client.post("/scheduler/shutdown", json={"wait": False}, headers=ADMIN).status_code == 204
    )
    assert info(client)["running"] is False
    for path in ("/scheduler/shutdown", "/scheduler/pause", "/scheduler/resume"):
        assert client.post(path, headers=ADMIN).status_code == 409
    assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 409
    assert client.post("/scheduler/jobs/a/run", headers=ADMIN).status_code == 409  # no pending
    assert client.get("/scheduler/runs", headers=ADMIN).get_json() == []
    assert client.post("/scheduler/start", headers=ADMIN).status_code == 204
    assert info(client)["running"] is True
    assert [j["id"] for j in client.get("/scheduler/jobs", headers=ADMIN).get_json()] == ["a"]


def test_host_not_allowed_serves_the_api_but_fires_nothing(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(
        SCHEDULER_ALLOWED_HOSTS=["some-other-host"], SCHEDULER_START_PAUSED=False
    ).test_client()
    assert client.post("/scheduler/jobs", json=JOB, headers=ADMIN).status_code == 200
    data = info(client)
    assert data["state"] == "paused" and data["firing"] is False
    response = client.post("/scheduler/resume", headers=ADMIN)
    assert response.status_code == 409
    assert "SCHEDULER_ALLOWED_HOSTS" in response.get_json()["error_message"]


def test_api_prefix_and_api_off(make_app: Callable[..., Flask]) -> None:
    moved = make_app(SCHEDULER_API_PREFIX="/api/scheduler").test_client()
    assert moved.get("/api/scheduler/jobs", headers=ADMIN).status_code == 200
    assert moved.get("/scheduler/jobs", headers=ADMIN).status_code == 404
    off = make_app(SCHEDULER_API_ENABLED=False).test_client()
    assert off.get("/scheduler/jobs", headers=ADMIN).status_code == 404
    assert off.get("/healthz").status_code == 200


def test_tasks_honour_allowed_modules(make_app: Callable[..., Flask]) -> None:
    client = make_app(SCHEDULER_ALLOWED_MODULES=["jobs.ops"]).test_client()
    refs = [t["func"] for t in client.get("/scheduler/tasks", headers=ADMIN).get_json()]
    assert refs and all(ref.startswith("jobs.ops:") for ref in refs)
    response = client.post("/scheduler/jobs", json=JOB, headers=ADMIN)
    assert response.status_code == 400 and "func" in response.get_json()["errors"]


def test_healthz_and_readyz(client: FlaskClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"jobstore:default": "ok", "database": "ok"}


def test_a_scheduler_shut_down_through_the_api_is_alive_but_not_ready(client: FlaskClient) -> None:
    assert (
        client.post("/scheduler/shutdown", json={"wait": False}, headers=ADMIN).status_code == 204
    )
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["scheduler"] == "stopped"
    health = client.get("/healthz")  # alive: a restart would undo the operator's shutdown
    assert health.status_code == 200 and health.get_json()["scheduler"] == "stopped"
    assert client.post("/scheduler/start", headers=ADMIN).status_code == 204
    assert client.get("/readyz").status_code == 200


def test_readyz_fails_when_the_database_is_unreachable(make_app: Callable[..., Flask]) -> None:
    client = make_app(  # it went away after start-up: no migration to fail on
        SCHEDULER_DATABASE_URL="postgresql+psycopg://u:s3cret@127.0.0.1:1/db",
        SCHEDULER_DATABASE_MIGRATE=False,
    ).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["checks"] == {"jobstore:default": "ok", "database": "unreachable"}
    text = ready.get_data(as_text=True)  # no secret, host, port or driver text: no auth here
    assert not any(leak in text for leak in ("s3cret", "127.0.0.1", ":1", "Error", "psycopg"))


def test_healthz_fails_while_the_scheduler_loop_is_stuck(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler_service.api import health

    client = app.test_client()
    scheduler = app.extensions["scheduler_service"].scheduler
    lifecycle = scheduler.lifecycle
    stuck, release = threading.Event(), threading.Event()
    real = lifecycle.due_requests

    def hang(now):  # a store or database call that never answers
        stuck.set()
        release.wait(30)
        return real(now)

    monkeypatch.setattr(health, "STUCK_AFTER", 0.5)
    assert client.get("/healthz").status_code == 200
    monkeypatch.setattr(lifecycle, "due_requests", hang)
    lifecycle.requests_changed = True
    scheduler.wakeup()
    try:
        assert stuck.wait(10), "the pass did not start"
        wait_for(lambda: client.get("/healthz").status_code == 503, timeout=10)
        assert client.get("/healthz").get_json()["status"] == "failing"
    finally:
        release.set()
    wait_for(lambda: client.get("/healthz").status_code == 200, timeout=10)


def test_unreachable_database_at_start_up_is_one_line(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError) as info:
        make_app(SCHEDULER_DATABASE_URL="postgresql+psycopg://u:s3cret@127.0.0.1:1/db")
    message = str(info.value)
    assert message.startswith("SCHEDULER_DATABASE_URL: cannot migrate")
    assert "s3cret" not in message and "\n" not in message
