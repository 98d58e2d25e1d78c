"""One job-API suite, run over the HTTP API against every job store the service supports.

Each test gets its own namespace on its backend (a SQLite file, a table, Redis keys, a ZooKeeper
path, a Mongo collection, a RethinkDB table) through ``store_url`` (see conftest.py); the apps
built on it are shut down before the namespace is dropped. The live backends come from
``make services`` (``TEST_*``); MongoDB and RethinkDB are emulators there, and their ids say so
(``mongodb-emulator``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scheduler_service.scheduler.limits import ID_RULE, MAX_ARGS_BYTES
from scheduler_service.stores import parse_jobstore_url
from tests.live_stores import Live, stop
from tests.support.api import SEED
from tests.support.api import add_job as add
from tests.support.api import get_job as get
from tests.support.credentials import ADMIN, OPERATOR
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services


@pytest.fixture
def client(store_app: Callable[..., Flask]) -> FlaskClient:
    return store_app().test_client()


def listing(client: FlaskClient, query: str = "") -> tuple[list[dict], int]:
    response = client.get(f"/scheduler/jobs{query}", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(), int(response.headers["X-Total-Count"])


def when(job: dict) -> datetime:
    return datetime.fromisoformat(job["next_run_time"])


def trigger_fields(job: dict) -> dict:
    keys = ("trigger", "seconds", "minutes", "start_date", "timezone", "hour", "minute")
    return {key: job[key] for key in keys if key in job}


def test_add_list_get(client: FlaskClient) -> None:
    before = datetime.now(UTC)
    job = add(client, SEED)
    assert (job["id"], job["func"], job["args"]) == ("job2", "jobs.examples:print_test", ["linda"])
    assert (job["trigger"], job["seconds"], job["jobstore"]) == ("interval", 5, "default")
    assert before < when(job) <= datetime.now(UTC) + timedelta(seconds=5)

    jobs, total = listing(client)
    assert total == 1
    assert [j["id"] for j in jobs] == ["job2"]
    assert jobs[0] == job

    stored = get(client, "job2")
    assert stored == job
    assert stored["jobstore"] == "default"


def test_patch_args_then_trigger(client: FlaskClient) -> None:
    job = add(client, SEED)

    response = client.patch("/scheduler/jobs/job2", json={"args": ["bob"]}, headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    patched = response.get_json()
    assert patched["args"] == ["bob"]
    # the trigger was not touched: same schedule
    assert trigger_fields(patched) == trigger_fields(job)
    assert patched["next_run_time"] == job["next_run_time"]
    assert get(client, "job2") == patched

    before = datetime.now(UTC)
    body = {"trigger": "cron", "hour": "3", "minute": "15"}
    response = client.patch("/scheduler/jobs/job2", json=body, headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    cron = response.get_json()
    assert (cron["trigger"], cron["hour"], cron["minute"]) == ("cron", "3", "15")
    assert "seconds" not in cron
    assert cron["args"] == ["bob"]
    stored = get(client, "job2")
    assert stored == cron
    # the next 03:15:00 UTC after the change
    next_run = when(stored)
    assert next_run.utcoffset() == timedelta(0)
    assert (next_run.hour, next_run.minute, next_run.second, next_run.microsecond) == (3, 15, 0, 0)
    assert before < next_run <= before + timedelta(days=1)


def test_pause_and_resume(client: FlaskClient) -> None:
    add(client, SEED)
    paused = client.post("/scheduler/jobs/job2/pause", headers=OPERATOR)
    assert paused.status_code == 200
    assert paused.get_json()["next_run_time"] is None
    assert get(client, "job2")["next_run_time"] is None
    assert listing(client, "?paused=true")[1] == 1

    before = datetime.now(UTC)
    resumed = client.post("/scheduler/jobs/job2/resume", headers=OPERATOR)
    assert resumed.status_code == 200
    assert resumed.get_json()["next_run_time"] is not None
    stored = get(client, "job2")
    assert stored["next_run_time"] is not None
    assert before < when(stored) <= datetime.now(UTC) + timedelta(seconds=5)
    assert listing(client, "?paused=true")[1] == 0


def test_delete(client: FlaskClient) -> None:
    add(client, SEED)
    response = client.delete("/scheduler/jobs/job2", headers=ADMIN)
    assert response.status_code == 204
    assert response.data == b""
    missing = client.get("/scheduler/jobs/job2", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.get_json()["error_message"] == "Job job2 not found"
    assert listing(client) == ([], 0)


def test_duplicate_id_is_409(client: FlaskClient) -> None:
    first = add(client, SEED)
    response = client.post(
        "/scheduler/jobs", json={**SEED, "args": ["other"], "seconds": 9}, headers=ADMIN
    )
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["code"] == 409
    assert get(client, "job2") == first
    jobs, total = listing(client)
    assert total == 1
    assert jobs == [first]


def test_job_fires(store_app: Callable[..., Flask], backend: str, tmp_path: Path) -> None:
    client = store_app(SCHEDULER_START_PAUSED=False).test_client()
    log = tmp_path / "fired" / "record.log"
    add(
        client,
        {
            "id": "rec",
            "func": "jobs.examples:record",
            "args": [str(log), backend],
            "trigger": "interval",
            "seconds": 1,
        },
    )

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    fired = wait_for(lambda: len(lines()) >= 2 and lines(), timeout=15)
    assert all(line.split(" ")[-1] == backend for line in fired)
    # the store moved the job on: its next run is still ahead
    assert when(get(client, "rec")) > datetime.now(UTC) - timedelta(seconds=1)


def test_jobs_survive_a_restart(store_app: Callable[..., Flask]) -> None:
    first_app = store_app()
    first = first_app.test_client()
    hourly = {key: value for key, value in SEED.items() if key != "seconds"}
    add(first, {**hourly, "minutes": 45})
    add(
        first,
        {
            "id": "nightly",
            "func": "jobs.examples:print_test",
            "args": ["night"],
            "trigger": "cron",
            "hour": "2",
            "minute": "30",
        },
    )
    assert first.post("/scheduler/jobs/nightly/pause", headers=OPERATOR).status_code == 200
    before = {job["id"]: job for job in listing(first)[0]}
    assert set(before) == {"job2", "nightly"}
    assert before["job2"]["next_run_time"] is not None
    assert before["nightly"]["next_run_time"] is None
    stop(first_app)

    second = store_app().test_client()
    jobs, total = listing(second)
    assert total == 2
    assert sorted(job["id"] for job in jobs) == ["job2", "nightly"]  # each exactly once
    after = {job["id"]: job for job in jobs}
    for job_id in ("job2", "nightly"):
        assert trigger_fields(after[job_id]) == trigger_fields(before[job_id])
        assert after[job_id]["args"] == before[job_id]["args"]
    assert (after["job2"]["minutes"], after["nightly"]["hour"]) == (45, "2")
    assert after["nightly"]["next_run_time"] is None  # still paused
    assert after["job2"]["next_run_time"] == before["job2"]["next_run_time"]
    assert get(second, "job2") == after["job2"]


def test_paging(client: FlaskClient) -> None:
    for i in range(25):
        add(client, {**SEED, "id": f"p{i:02d}", "seconds": 100 + i})
    everything, total = listing(client)
    assert total == 25
    ordered = [job["id"] for job in sorted(everything, key=when)]
    assert ordered == [f"p{i:02d}" for i in range(25)]
    assert [job["id"] for job in everything] == ordered

    page, total = listing(client, "?limit=10&offset=10")
    assert total == 25
    assert len(page) == 10
    assert [job["id"] for job in page] == ordered[10:20]
    times = [when(job) for job in page]
    assert times == sorted(times)
    assert len(set(times)) == 10

    tail, total = listing(client, "?limit=10&offset=20")
    assert (len(tail), total) == (5, 25)
    assert [job["id"] for job in tail] == ordered[20:]


def test_pages_read_at_the_store_match_its_full_listing(client: FlaskClient) -> None:
    """Pages (read at the store where it can) list the soonest first (ties by id), then the
    paused jobs by id, whatever the store; filters and totals agree with the full listing."""
    for i in range(9):
        add(client, {**SEED, "id": f"q{8 - i}", "seconds": 200 + 10 * (i % 4)})  # equal times
    for job_id in ("q7", "q2", "q5"):
        client.post(f"/scheduler/jobs/{job_id}/pause", headers=ADMIN)
    store = client.application.extensions["scheduler_service"].scheduler._lookup_jobstore("default")
    own = {job.id: job.next_run_time for job in store.get_all_jobs()}
    scheduled = sorted((i for i in own if own[i] is not None), key=lambda i: (own[i], i))
    expected = [*scheduled, "q2", "q5", "q7"]
    for query, wanted in (
        ("", expected),
        ("paused=false&", expected[:6]),
        ("paused=true&", expected[6:]),
    ):
        pages = [listing(client, f"?{query}limit=4&offset={k}") for k in range(0, 12, 4)]
        assert [j["id"] for page, _ in pages for j in page] == wanted, query
        assert {total for _, total in pages} == {len(wanted)}
    assert listing(client, "?offset=7")[0] == listing(client)[0][7:]


# APScheduler 3.11's BackgroundScheduler.shutdown() wakes its thread, which ran _process_jobs()
# once more on the closed stores; SQLAlchemy and Redis reconnect by themselves, so every due run
# was moved on without running. The service's scheduler skips that last pass.
def test_shutdown_does_not_consume_due_runs(store_app: Callable[..., Flask]) -> None:
    first_app = store_app()  # paused: nothing fires, a due run waits for a scheduler that fires
    first = first_app.test_client()
    due = when(add(first, {**SEED, "seconds": 1}))
    wait_for(lambda: datetime.now(UTC) > due + timedelta(milliseconds=50), timeout=5)
    stop(first_app)  # the run is due now, and still pending

    second = store_app().test_client()
    after = when(get(second, "job2"))
    assert after == due, f"the pending run was consumed at shutdown: moved by {after - due}"


# -- issue 15: what every store holds alike -----------------------------------------------------

# Ids that broke a store: ZooKeeper answered 500 to ".", ".." and an emoji; MariaDB took "a "
# for "a"; RethinkDB keys stop at 127 bytes.
TRICKY_IDS = (".", "..", "\U0001f600", "a ", "x" * 128)


def refusal(field: str, problem: str) -> dict:
    errors = {field: f"Value error, {problem}"}
    return {
        "error_message": "the job is not valid",
        "code": 400,
        "status": "Bad Request",
        "errors": errors,
    }


def test_ids_outside_the_alphabet_are_refused_alike(client: FlaskClient) -> None:
    for job_id in TRICKY_IDS:
        response = client.post("/scheduler/jobs", json={**SEED, "id": job_id}, headers=ADMIN)
        answer = (response.status_code, response.get_json())
        assert answer == (400, refusal("id", f"use {ID_RULE}")), job_id
    assert listing(client) == ([], 0)


@pytest.mark.parametrize(
    ("route", "method"),
    [("", "get"), ("", "delete"), ("", "patch"), ("/pause", "post"), ("/resume", "post")],
)
def test_lookups_of_ids_no_store_can_hold_are_404_alike(
    client: FlaskClient, route: str, method: str
) -> None:
    """ZooKeeper answered 500 to a DELETE of "." or "..", PostgreSQL to any lookup of a NUL
    (real RethinkDB to a key over 127 bytes): a job with such an id cannot exist."""
    add(client, SEED)
    kwargs = {"json": {"args": ["x"]}} if method == "patch" else {}
    for raw, job_id in ((".", "."), ("..", ".."), ("%00", "\x00"), ("%F0%9F%98%80", "\U0001f600")):
        response = getattr(client, method)(f"/scheduler/jobs/{raw}{route}", headers=ADMIN, **kwargs)
        body = response.get_json()
        assert (response.status_code, body["error_message"]) == (404, f"Job {job_id} not found")
    assert [job["id"] for job in listing(client)[0]] == ["job2"]


def test_args_past_the_bound_are_refused_alike_and_the_largest_are_kept(
    store_app: Callable[..., Flask],
) -> None:
    # tests.app_jobs:keep takes any JSON value: the bound is what refuses, not the types.
    client = store_app(SCHEDULER_ALLOWED_MODULES=["jobs", "tests.app_jobs"]).test_client()
    body = {**SEED, "func": "tests.app_jobs:keep", "args": ["x" * MAX_ARGS_BYTES]}
    response = client.post("/scheduler/jobs", json=body, headers=ADMIN)
    too_big = refusal("args", f"more than {MAX_ARGS_BYTES} bytes as JSON")
    assert (response.status_code, response.get_json()) == (400, too_big)
    assert listing(client) == ([], 0)
    # Floats pickle into 2.25 times their JSON (`1.0,` is 4 bytes, 9 pickled): both at the
    # bound still fit in MariaDB's 64 KiB BLOB.
    args, kwargs = [[1.0] * 2047], {"other": [1.0] * 2045}
    assert len(json.dumps(args, separators=(",", ":"))) == MAX_ARGS_BYTES - 1
    assert len(json.dumps(kwargs, separators=(",", ":"))) == MAX_ARGS_BYTES - 1
    largest = {"id": "big", "func": "tests.app_jobs:keep", "args": args, "kwargs": kwargs}
    add(client, {**largest, "trigger": "interval", "hours": 1})
    stored = get(client, "big")
    assert (stored["args"], stored["kwargs"]) == (args, kwargs)


def test_ids_that_differ_by_case_are_separate_jobs(
    store_app: Callable[..., Flask], tmp_path: Path
) -> None:
    client = store_app().test_client()
    log = tmp_path / "case" / "record.log"
    # Due at one instant, the current whole second, added while paused: both are due when
    # the scheduler resumes, however long adding them took (within their minute of grace).
    at = datetime.now(UTC).replace(microsecond=0)
    for job_id in ("Nightly", "nightly"):
        body = {
            "id": job_id,
            "func": "jobs.examples:record",
            "args": [str(log), job_id],
            "misfire_grace_time": 60,
        }
        add(client, {**body, "trigger": "interval", "hours": 1, "next_run_time": at.isoformat()})
    assert sorted(job["id"] for job in listing(client)[0]) == ["Nightly", "nightly"]
    assert get(client, "nightly")["args"] == [str(log), "nightly"]
    assert client.get("/scheduler/jobs/NIGHTLY", headers=ADMIN).status_code == 404
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204

    def ran() -> list[str]:
        return (
            sorted(line.split()[-1] for line in log.read_text().splitlines())
            if log.exists()
            else []
        )

    wait_for(lambda: len(ran()) >= 2, timeout=30, what="both jobs ran", details=lambda: str(ran()))
    assert ran() == ["Nightly", "nightly"]
    assert client.delete("/scheduler/jobs/NIGHTLY", headers=ADMIN).status_code == 404
    assert client.delete("/scheduler/jobs/Nightly", headers=ADMIN).status_code == 204
    assert client.get("/scheduler/jobs/Nightly", headers=ADMIN).status_code == 404
    assert get(client, "nightly")["args"] == [str(log), "nightly"]
    assert [job["id"] for job in listing(client)[0]] == ["nightly"]


def test_stored_ids_are_told_apart_exactly_even_in_an_older_table(
    store_app: Callable[..., Flask], live_store: Live, backend: str
) -> None:
    """Ids from before the alphabet (a trailing space) and the case of any id: exact on every
    store, in a SQL table that Flask-APScheduler (or an older release) created, too."""
    kind, options = parse_jobstore_url(live_store.url)
    if kind == "sqlalchemy":  # the table as APScheduler creates it: MariaDB's default collation
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from sqlalchemy import make_url

        if backend == "sqlite":
            Path(make_url(options["url"]).database).parent.mkdir(parents=True, exist_ok=True)
        older = SQLAlchemyJobStore(**options)
        older.jobs_t.create(older.engine)
        older.engine.dispose()
    app = store_app()
    scheduler = app.extensions["scheduler_service"].scheduler
    for job_id in ("a", "a ", "A"):
        scheduler.add_job("jobs.examples:print_test", "interval", hours=1, args=[job_id], id=job_id)
    assert {job_id: scheduler.get_job(job_id).args for job_id in ("a", "a ", "A")} == {
        "a": ("a",),
        "a ": ("a ",),
        "A": ("A",),
    }
    client = app.test_client()
    assert get(client, "a%20")["args"] == ["a "]
    assert client.delete("/scheduler/jobs/A", headers=ADMIN).status_code == 204
    assert sorted(job["id"] for job in listing(client)[0]) == ["a", "a "]
    assert (live_store.holds("a"), live_store.holds("a "), live_store.holds("A")) == (
        True,
        True,
        False,
    )
