"""Both executors: jobs run in a Flask app context; the process pool in another process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from tests.support.credentials import ADMIN
from tests.support.waiting import wait_for


@pytest.mark.parametrize("executor", ["default", "process"])
def test_jobs_get_an_app_context(
    make_app: Callable[..., Flask], tmp_path: Path, executor: str
) -> None:
    app = make_app(SCHEDULER_ALLOWED_MODULES=["jobs", "tests.app_jobs"])
    client = app.test_client()
    log = tmp_path / f"{executor}.log"
    job = {
        "id": "ctx",
        "func": "tests.app_jobs:write_app_context",
        "args": [str(log)],
        "trigger": "interval",
        "hours": 1,
        "executor": executor,
    }
    assert client.post("/scheduler/jobs", json=job, headers=ADMIN).status_code == 200
    assert client.post("/scheduler/jobs/ctx/run", headers=ADMIN).status_code == 202
    pid, instance = wait_for(lambda: log.exists() and log.read_text().split())
    assert instance == app.instance_path  # the child built its app from the parent's settings
    assert (int(pid) == os.getpid()) == (executor == "default")


def test_a_failing_job_does_not_break_the_process_pool(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    client = make_app().test_client()
    log = tmp_path / "after.log"
    for job in (
        {"id": "boom", "func": "jobs.examples:fail", "args": ["on purpose"]},
        {"id": "rec", "func": "jobs.examples:record", "args": [str(log), "after"]},
    ):
        body = {**job, "trigger": "interval", "hours": 1, "executor": "process"}
        assert client.post("/scheduler/jobs", json=body, headers=ADMIN).status_code == 200
        assert client.post(f"/scheduler/jobs/{job['id']}/run", headers=ADMIN).status_code == 202
    wait_for(lambda: log.exists() and "after" in log.read_text())


@pytest.mark.parametrize("executor", ["default", "process"])
def test_jobs_run_after_a_shutdown_and_start(
    make_app: Callable[..., Flask], tmp_path: Path, executor: str
) -> None:
    client = make_app().test_client()
    log = tmp_path / "after.log"
    job = {
        "id": "r",
        "func": "jobs.examples:record",
        "args": [str(log), "again"],
        "trigger": "interval",
        "hours": 1,
        "executor": executor,
    }
    assert client.post("/scheduler/jobs", json=job, headers=ADMIN).status_code == 200
    assert client.post("/scheduler/shutdown", headers=ADMIN).status_code == 204
    assert client.post("/scheduler/start", headers=ADMIN).status_code == 204
    run = client.post("/scheduler/jobs/r/run?wait=30", headers=ADMIN).get_json()
    assert run["state"] == "succeeded"
    assert "again" in log.read_text()
