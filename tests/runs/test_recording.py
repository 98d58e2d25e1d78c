"""SPEC §6: every run of every job is recorded, and shown by the runs API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.credentials import ADMIN, OPERATOR, VIEWER
from tests.support.waiting import wait_for


def add(client: FlaskClient, job_id: str, func: str, args: list, **extra) -> None:
    body = {"id": job_id, "func": func, "args": args, "trigger": "interval", "hours": 1, **extra}
    response = client.post("/scheduler/jobs", json=body, headers=ADMIN)
    assert response.status_code == 200, response.get_json()


def run_now(client: FlaskClient, job_id: str, wait: int = 10) -> dict:
    response = client.post(f"/scheduler/jobs/{job_id}/run?wait={wait}", headers=OPERATOR)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def runs_of(client: FlaskClient, job_id: str, query: str = "") -> list[dict]:
    response = client.get(f"/scheduler/jobs/{job_id}/runs{query}", headers=VIEWER)
    assert response.status_code == 200
    return response.get_json()


def test_a_successful_run_is_recorded(client: FlaskClient, tmp_path: Path) -> None:
    add(client, "rec", "jobs.examples:record", [str(tmp_path / "x.log"), "v"])
    run = run_now(client, "rec")
    assert run["state"] == "succeeded"
    assert (run["job_id"], run["trigger"], run["executor"]) == ("rec", "manual", "default")
    assert run["result"] == {"path": str(tmp_path / "x.log"), "pid": os.getpid(), "value": "v"}
    assert "record: appended" in run["log"]
    assert run["pid"] == os.getpid() and run["host"] == socket.gethostname()
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    assert started <= finished and run["duration"] == pytest.approx(
        (finished - started).total_seconds(), abs=0.01
    )
    assert client.get(f"/scheduler/runs/{run['id']}", headers=VIEWER).get_json() == run


def test_a_failing_run_keeps_error_and_traceback(client: FlaskClient) -> None:
    add(client, "boom", "jobs.examples:fail", ["on purpose"])
    run = run_now(client, "boom")
    assert run["state"] == "failed"
    assert run["error"] == "RuntimeError: on purpose"
    assert "in fail" in run["traceback"]
    assert run["result"] is None


def test_a_process_pool_run_is_recorded_by_its_child(client: FlaskClient, tmp_path: Path) -> None:
    add(client, "proc", "jobs.examples:record", [str(tmp_path / "p.log"), "p"], executor="process")
    run = run_now(client, "proc", wait=30)
    assert run["state"] == "succeeded"
    assert run["pid"] != os.getpid()
    assert run["result"]["pid"] == run["pid"]
    assert "record: appended" in run["log"]


def test_scheduled_runs_are_recorded(client: FlaskClient, tmp_path: Path) -> None:
    add(client, "tick", "jobs.examples:print_test", ["t"], seconds=1, hours=None)
    client.post("/scheduler/resume", headers=OPERATOR)
    done = wait_for(
        lambda: (
            [r for r in runs_of(client, "tick") if r["state"] == "succeeded"]
            if len(runs_of(client, "tick", "?state=succeeded")) >= 2
            else None
        )
    )
    assert all(r["trigger"] == "schedule" for r in done)
    assert all(r["result"] == "Hello, t" for r in done)


def test_max_instances_refusal_is_a_skipped_run(client: FlaskClient) -> None:
    add(client, "slow", "jobs.examples:sleep", [2])
    first = run_now(client, "slow", wait=0)
    refused = client.post("/scheduler/jobs/slow/run", headers=OPERATOR)
    assert refused.status_code == 409
    skipped = runs_of(client, "slow", "?state=skipped")
    assert len(skipped) == 1 and skipped[0]["id"] != first["id"]


def test_wait_returns_a_running_run_when_time_is_up(client: FlaskClient) -> None:
    add(client, "long", "jobs.examples:sleep", [4])
    run = run_now(client, "long", wait=1)
    assert run["state"] == "running" and run["finished_at"] is None


def test_a_missed_run_is_recorded(app: Flask, client: FlaskClient) -> None:
    add(client, "late", "jobs.examples:print_test", ["x"], misfire_grace_time=1)
    scheduler = app.extensions["scheduler_service"].scheduler
    job = scheduler.get_job("late")
    executor = scheduler._lookup_executor("default")
    [run_id] = executor.submit_job(job, [datetime.now(UTC) - timedelta(seconds=30)])
    run = wait_for(
        lambda: (
            (r := client.get(f"/scheduler/runs/{run_id}", headers=VIEWER).get_json())["state"]
            == "missed"
            and r
        )
    )
    assert run["started_at"] is None and "misfire_grace_time" in run["error"]


def test_a_deleted_job_keeps_its_history(client: FlaskClient) -> None:
    add(client, "gone", "jobs.examples:print_test", ["x"])
    run_now(client, "gone")
    assert client.delete("/scheduler/jobs/gone", headers=ADMIN).status_code == 204
    assert [r["state"] for r in runs_of(client, "gone")] == ["succeeded"]


def test_list_filters_and_pages(client: FlaskClient) -> None:
    add(client, "a", "jobs.examples:print_test", ["x"])
    add(client, "b", "jobs.examples:fail", ["no"])
    for _ in range(3):
        run_now(client, "a")
    run_now(client, "b")
    everything = client.get("/scheduler/runs", headers=VIEWER)
    assert everything.headers["X-Total-Count"] == "4"
    times = [r["scheduled_run_time"] for r in everything.get_json()]
    assert times == sorted(times, reverse=True)  # newest first
    page = client.get("/scheduler/runs?job_id=a&limit=2&offset=1", headers=VIEWER)
    assert page.headers["X-Total-Count"] == "3" and len(page.get_json()) == 2
    failed = client.get("/scheduler/runs?state=failed", headers=VIEWER).get_json()
    assert [r["job_id"] for r in failed] == ["b"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    since = client.get("/scheduler/runs", query_string={"since": future}, headers=VIEWER)
    assert since.get_json() == [] and since.headers["X-Total-Count"] == "0"
    until = client.get("/scheduler/runs", query_string={"until": future}, headers=VIEWER)
    assert until.headers["X-Total-Count"] == "4"


@pytest.mark.parametrize(
    "query", ["state=done", "since=yesterday", "limit=0", "offset=-2", "limit=99999"]
)
def test_bad_run_queries_are_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/scheduler/runs?{query}", headers=VIEWER)
    assert response.status_code == 400 and response.get_json()["code"] == 400


def test_unknown_run_is_404(client: FlaskClient) -> None:
    response = client.get("/scheduler/runs/424242", headers=VIEWER)
    assert response.status_code == 404
    assert response.get_json()["error_message"] == "Run 424242 not found"


def test_bad_wait_is_400_and_runs_nothing(client: FlaskClient) -> None:
    add(client, "w", "jobs.examples:print_test", ["x"])
    for wait in ("-1", "x", "100000"):
        assert (
            client.post(f"/scheduler/jobs/w/run?wait={wait}", headers=OPERATOR).status_code == 400
        )
    assert runs_of(client, "w") == []


def test_runs_an_older_release_left_open_are_unknown_at_start_up(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    client = app.test_client()
    add(client, "crash", "jobs.examples:print_test", ["x"])
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    from scheduler_service.extensions import db
    from scheduler_service.runs.models import Run

    with app.app_context():  # a run that a crashed process of an older release left running
        run = Run(
            job_id="crash",
            trigger="schedule",
            state="running",
            attempt=1,
            scheduled_run_time=datetime.now(UTC),
            host=socket.gethostname(),
            pid=int(dead.stdout),
            result_truncated=False,
            log_truncated=False,
        )
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    app.extensions["scheduler_service"].shutdown()
    restarted = make_app().test_client()
    record = restarted.get(f"/scheduler/runs/{run_id}", headers=VIEWER).get_json()
    assert record["state"] == "unknown" and record["finished_at"] is not None
    assert "outcome was not recorded" in record["error"]


def test_the_default_database_takes_concurrent_writers(app: Flask) -> None:
    # Threads and process-pool children all write runs to the one SQLite file.
    from scheduler_service.extensions import db

    with app.app_context():
        assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(db.text("PRAGMA busy_timeout")).scalar() == 30000
