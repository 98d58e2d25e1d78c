"""Run history retention: pruned by age and by count per job, by a built-in housekeeping job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask

from scheduler_service.extensions import db
from scheduler_service.runs.models import Run
from scheduler_service.runs.retention import prune_runs
from tests.support.credentials import ADMIN, OPERATOR, VIEWER
from tests.support.waiting import wait_for


def add_runs(app: Flask, job_id: str, ages_days: list[float], state: str = "succeeded") -> None:
    now = datetime.now(UTC)
    with app.app_context():
        db.session.add_all(
            Run(
                job_id=job_id,
                trigger="schedule",
                state=state,
                attempt=1,
                scheduled_run_time=now - timedelta(days=age),
                result_truncated=False,
                log_truncated=False,
            )
            for age in ages_days
        )
        db.session.commit()


def ages(app: Flask, job_id: str) -> list[int]:
    now = datetime.now(UTC)
    with app.app_context():
        runs = db.session.scalars(db.select(Run).where(Run.job_id == job_id)).all()
        return sorted(round((now - r.scheduled_run_time).total_seconds() / 86400) for r in runs)


def test_prune_by_age_keeps_unfinished_runs(app: Flask) -> None:
    add_runs(app, "a", [1, 10, 40, 90])
    add_runs(app, "a", [100], state="running")
    with app.app_context():
        assert prune_runs(max_age_days=30, max_per_job=0) == 2
    assert ages(app, "a") == [1, 10, 100]


def test_prune_by_count_per_job_keeps_the_newest(app: Flask) -> None:
    add_runs(app, "a", [1, 2, 3, 4, 5])
    add_runs(app, "b", [1, 2])
    with app.app_context():
        assert prune_runs(max_age_days=0, max_per_job=3) == 2
    assert ages(app, "a") == [1, 2, 3]
    assert ages(app, "b") == [1, 2]


def test_housekeeping_job_prunes_and_is_hidden_from_the_job_api(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(SCHEDULER_HOUSEKEEPING_INTERVAL=1, SCHEDULER_RUNS_MAX_AGE_DAYS=7)
    client = app.test_client()
    add_runs(app, "old", [10, 20])
    client.post("/scheduler/resume", headers=OPERATOR)
    runs = wait_for(
        lambda: client.get(
            "/scheduler/runs?job_id=__housekeeping__&state=succeeded", headers=VIEWER
        ).get_json()
    )
    assert runs[-1]["result"] == {"pruned_runs": 2}  # its first pass, newest first
    assert ages(app, "old") == []
    assert client.get("/scheduler/jobs", headers=ADMIN).get_json() == []
    assert client.get("/scheduler/jobs/__housekeeping__", headers=ADMIN).status_code == 404
    reserved = {
        "id": "__mine",
        "func": "jobs.examples:print_test",
        "args": ["x"],
        "trigger": "interval",
        "seconds": 5,
    }
    response = client.post("/scheduler/jobs", json=reserved, headers=ADMIN)
    assert response.status_code == 400 and "id" in response.get_json()["errors"]
