"""Retries with backoff and timeouts per job (issue 5): one fire, several attempts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from scheduler_service.scheduler.policy import MAX_RETRY_DELAY, RunPolicy
from tests.support.api import add_hourly_job as add
from tests.support.credentials import ADMIN, OPERATOR, VIEWER
from tests.support.waiting import wait_for


def runs_of(client: FlaskClient, job_id: str) -> list[dict]:
    response = client.get(f"/scheduler/jobs/{job_id}/runs", headers=VIEWER)
    return sorted(response.get_json(), key=lambda r: r["attempt"])


def test_backoff_doubles_and_is_capped() -> None:
    policy = RunPolicy(retries=30, retry_delay=2)
    assert [policy.delay(n) for n in (2, 3, 4, 5)] == [2, 4, 8, 16]
    assert policy.delay(30) == MAX_RETRY_DELAY


def test_policy_fields_in_the_job_json(client: FlaskClient) -> None:
    job = add(
        client, "p", "jobs.examples:print_test", ["x"], retries=3, retry_delay=1.5, timeout=20
    )
    assert (job["retries"], job["retry_delay"], job["timeout"]) == (3, 1.5, 20)
    plain = add(client, "q", "jobs.examples:print_test", ["x"])
    assert (plain["retries"], plain["timeout"]) == (0, None)
    before = job["next_run_time"]
    patched = client.patch(
        "/scheduler/jobs/p", json={"retries": 1, "timeout": None}, headers=ADMIN
    ).get_json()
    assert (patched["retries"], patched["timeout"]) == (1, None)
    assert patched["next_run_time"] == before  # the schedule did not move
    assert patched["trigger"] == "interval" and patched["hours"] == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("retries", -1), ("retries", 11), ("retry_delay", -2), ("timeout", 0), ("timeout", "soon")],
)
def test_bad_policy_is_400(client: FlaskClient, field: str, value: object) -> None:
    body = {
        "id": "b",
        "func": "jobs.examples:print_test",
        "args": ["x"],
        "trigger": "interval",
        "hours": 1,
        field: value,
    }
    response = client.post("/scheduler/jobs", json=body, headers=ADMIN)
    assert response.status_code == 400 and field in response.get_json()["errors"]


def test_a_failing_fire_is_retried_until_it_succeeds(client: FlaskClient, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    add(client, "flaky", "jobs.examples:flaky", [str(counter), 2], retries=2, retry_delay=0.1)
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204  # retries wait
    first = client.post("/scheduler/jobs/flaky/run?wait=10", headers=OPERATOR).get_json()
    assert (first["state"], first["attempt"]) == ("failed", 1)
    runs = wait_for(
        lambda: (r := runs_of(client, "flaky")) and r[-1]["state"] == "succeeded" and r, timeout=15
    )
    assert [(r["attempt"], r["state"]) for r in runs] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    assert len({r["scheduled_run_time"] for r in runs}) == 1  # three attempts of one fire
    assert all(r["trigger"] == "manual" for r in runs)
    assert runs[-1]["result"] == 3


def test_a_thread_run_past_its_timeout_is_timed_out_and_cancelled(client: FlaskClient) -> None:
    add(client, "slow", "jobs.examples:sleep", [10], timeout=1)
    run = client.post("/scheduler/jobs/slow/run?wait=8", headers=OPERATOR).get_json()
    assert run["state"] == "timed_out"
    assert run["error"] == "timed out after 1 s"
    # sleep() was told through its cancel event and stopped, which frees its instance
    # (max_instances=1) long before its 10 seconds: a new run is accepted again.
    wait_for(
        lambda: client.post("/scheduler/jobs/slow/run", headers=OPERATOR).status_code == 202,
        timeout=5,
    )
    final = client.get(f"/scheduler/runs/{run['id']}", headers=VIEWER).get_json()
    assert final["state"] == "timed_out"  # its late end did not overwrite the verdict


def test_a_process_run_past_its_timeout_is_terminated(client: FlaskClient) -> None:
    add(client, "hang", "jobs.examples:sleep", [30], timeout=2, executor="process")
    run = client.post("/scheduler/jobs/hang/run?wait=15", headers=OPERATOR).get_json()
    assert run["state"] == "timed_out"
    assert run["error"] == "timed out after 2 s"
    if run["pid"] != os.getpid():  # the child had started and recorded its pid: it is gone

        def gone() -> bool:
            try:
                os.kill(run["pid"], 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, timeout=5)


def test_a_process_run_within_its_timeout_succeeds(client: FlaskClient, tmp_path: Path) -> None:
    add(
        client,
        "quick",
        "jobs.examples:record",
        [str(tmp_path / "q.log"), "q"],
        timeout=60,
        executor="process",
    )
    run = client.post("/scheduler/jobs/quick/run?wait=30", headers=OPERATOR).get_json()
    assert run["state"] == "succeeded"
    assert run["result"]["pid"] == run["pid"] != os.getpid()


def test_retries_never_eat_scheduled_fires(client: FlaskClient, tmp_path: Path) -> None:
    # Fails every time; fires every second; each failure is retried once 0.5 s later, while
    # the next fire comes. With max_instances=1 a retry counted as an instance would make
    # fires be skipped.
    add(
        client,
        "always",
        "jobs.examples:flaky",
        [str(tmp_path / "n"), 10_000],
        retries=1,
        retry_delay=0.5,
        seconds=1,
        hours=None,
    )
    client.post("/scheduler/resume", headers=OPERATOR)

    def enough() -> list[dict] | None:
        runs = runs_of(client, "always")
        fires = {r["scheduled_run_time"] for r in runs if r["attempt"] == 1}
        retried = {r["scheduled_run_time"] for r in runs if r["attempt"] == 2}
        return runs if len(fires) >= 3 and len(retried) >= 2 else None

    runs = wait_for(enough, timeout=15)
    assert not [r for r in runs if r["state"] == "skipped"]
    assert {r["attempt"] for r in runs} == {1, 2}  # retries=1: never a third attempt
    assert all(r["trigger"] == "schedule" for r in runs)


@pytest.mark.slow  # a crash: a process of its own, killed
def test_a_dedicated_child_that_dies_is_a_failed_run(make_app) -> None:
    client = make_app(SCHEDULER_ALLOWED_MODULES=["jobs", "tests.app_jobs"]).test_client()
    add(client, "crash", "tests.app_jobs:die", [3], timeout=30, executor="process")
    run = client.post("/scheduler/jobs/crash/run?wait=20", headers=OPERATOR).get_json()
    assert run["state"] == "failed"
    assert run["error"] == "its process exited with code 3"


@pytest.mark.slow  # a crash: the pool's child dies, and the pool is rebuilt
def test_a_pool_child_that_dies_is_a_failed_run(make_app) -> None:
    client = make_app(SCHEDULER_ALLOWED_MODULES=["jobs", "tests.app_jobs"]).test_client()
    add(client, "crash", "tests.app_jobs:die", [4], executor="process")
    run = client.post("/scheduler/jobs/crash/run?wait=20", headers=OPERATOR).get_json()
    assert run["state"] == "failed"
    assert run["error"].startswith("BrokenProcessPool")
    # The pool is replaced: the next process run works.
    add(client, "after", "jobs.examples:print_test", ["x"], executor="process")
    after = client.post("/scheduler/jobs/after/run?wait=30", headers=OPERATOR).get_json()
    assert after["state"] == "succeeded"
