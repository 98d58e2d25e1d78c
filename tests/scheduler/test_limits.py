"""Issue 15, safe by default under hostile input: job ids, arguments, times in the past and
cron triggers are refused (4xx JSON, nothing changed) or bounded, with bounded work."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from flask.testing import FlaskClient

from scheduler_service.firing.loop import LEDGER_LIMIT, due_run_times
from scheduler_service.scheduler.horizon import HORIZON_YEARS
from scheduler_service.scheduler.limits import ID_RULE, MAX_ARGS_BYTES, MAX_ARGS_DEPTH
from tests.support.api import SEED, assert_error
from tests.support.api import add_job as add
from tests.support.api import get_job as get
from tests.support.credentials import ADMIN, OPERATOR
from tests.support.waiting import wait_for

HOURLY = {
    "id": "h",
    "func": "jobs.examples:print_test",
    "args": ["x"],
    "trigger": "interval",
    "hours": 1,
}
CRON = {"id": "c", "func": "jobs.examples:print_test", "args": ["x"], "trigger": "cron"}


def job_ids(client: FlaskClient) -> list[str]:
    return [job["id"] for job in client.get("/scheduler/jobs", headers=ADMIN).get_json()]


def when(job: dict) -> datetime:
    return datetime.fromisoformat(job["next_run_time"])


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


# -- job ids: one alphabet, the same on every store (see also test_store_suite.py) -------------

BAD_IDS = [
    ".",
    "..",
    ".hidden",
    "\U0001f600",
    "café",
    "a b",
    "a ",
    " a",
    "a/b",
    "a?b",
    "a%20b",
    "tab\there",
    "x" * 128,
]
GOOD_IDS = ["job1", "cleanup-nightly", "Nightly", "a.b:c@d_e-f", "-", "0", "x" * 127]


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_an_id_outside_the_alphabet_is_400(client: FlaskClient, job_id: str) -> None:
    body = assert_error(
        client.post("/scheduler/jobs", json={**SEED, "id": job_id}, headers=ADMIN), 400, "id"
    )
    assert body["errors"]["id"] == f"Value error, use {ID_RULE}"
    assert job_ids(client) == []


def test_ids_in_the_alphabet_are_kept_as_given(client: FlaskClient) -> None:
    for job_id in GOOD_IDS:
        assert add(client, {**SEED, "id": job_id})["id"] == job_id
        assert get(client, job_id)["id"] == job_id
    assert sorted(job_ids(client)) == sorted(GOOD_IDS)


def test_a_stored_id_from_before_the_alphabet_can_still_be_patched(
    app: Flask, client: FlaskClient
) -> None:
    scheduler = app.extensions["scheduler_service"].scheduler
    scheduler.add_job("jobs.examples:print_test", "interval", hours=1, args=["x"], id="old id")
    response = client.patch("/scheduler/jobs/old%20id", json={"args": ["y"]}, headers=ADMIN)
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["id"], response.get_json()["args"]) == ("old id", ["y"])


def test_ids_that_differ_by_case_fire_and_are_recorded_apart(
    claims_app: Flask, tmp_path: Path
) -> None:
    """The run history on MariaDB compared job ids without case: `Nightly` and `nightly`
    claimed one fire between them, and one of them never ran (skipped_duplicate)."""
    client, log = claims_app.test_client(), tmp_path / "case.log"
    # Due already (the current whole second), added while paused: both fire at once on resume.
    at = datetime.now(UTC).replace(microsecond=0)
    for job_id in ("Nightly", "nightly"):  # one instant: one claim each
        body = {**HOURLY, "id": job_id, "func": "jobs.examples:record", "args": [str(log), job_id]}
        add(client, {**body, "next_run_time": at.isoformat()})
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204

    def runs() -> list[dict]:
        response = client.get("/scheduler/runs?limit=100", headers=ADMIN)
        return [r for r in response.get_json() if not r["job_id"].startswith("__")]

    def both_finished() -> bool:
        return sum(r["state"] not in ("pending", "submitted", "running") for r in runs()) >= 2

    wait_for(both_finished, timeout=30, what="both fires decided", details=lambda: str(runs()))
    assert Counter((r["job_id"], r["state"]) for r in runs()) == {
        ("Nightly", "succeeded"): 1,
        ("nightly", "succeeded"): 1,
    }
    assert sorted(line.split()[-1] for line in log.read_text().splitlines()) == [
        "Nightly",
        "nightly",
    ]
    only = client.get("/scheduler/jobs/nightly/runs", headers=ADMIN).get_json()
    assert [r["job_id"] for r in only] == ["nightly"]


# -- next_run_time and run_date in the past ----------------------------------------------------


def test_a_date_job_due_within_its_grace_runs_at_once(make_app: Callable, tmp_path: Path) -> None:
    """As in Flask-APScheduler: a slow client creating a job due "now" still gets it run."""
    client, log = make_app(SCHEDULER_START_PAUSED=False).test_client(), tmp_path / "late.log"
    run_date = ago(5)
    job = add(
        client,
        {
            "id": "late",
            "func": "jobs.examples:record",
            "args": [str(log), "late"],
            "trigger": "date",
            "run_date": run_date,
            "misfire_grace_time": 60,
        },
    )
    assert datetime.fromisoformat(job["run_date"]) == datetime.fromisoformat(run_date)
    wait_for(lambda: log.exists() and log.read_text().strip(), timeout=20, what="the late job ran")

    def outcome() -> list[str]:
        runs = client.get("/scheduler/jobs/late/runs", headers=ADMIN).get_json()
        return [run["state"] for run in runs if run["state"] not in ("submitted", "running")]

    assert wait_for(outcome, timeout=20, what="the run recorded") == ["succeeded"]


@pytest.mark.parametrize(("back", "grace"), [(120, 60), (10, 5), (400 * 365 * 86400, 60)])
def test_a_date_job_further_back_than_its_grace_is_422(
    client: FlaskClient, back: float, grace: int
) -> None:
    body = {**HOURLY, "trigger": "date", "run_date": ago(back), "misfire_grace_time": grace}
    del body["hours"]
    assert_error(client.post("/scheduler/jobs", json=body, headers=ADMIN), 422, "run_date")
    assert job_ids(client) == []


@pytest.mark.parametrize("next_run_time", ["0001-01-01T00:00:00", "2001-01-01T00:00:00+00:00"])
def test_a_next_run_time_further_back_than_the_grace_is_422_on_create(
    client: FlaskClient, next_run_time: str
) -> None:
    """An hourly job due in the year 1 held the scheduler listing every missed hour."""
    body = {**HOURLY, "next_run_time": next_run_time}
    errors = assert_error(client.post("/scheduler/jobs", json=body, headers=ADMIN), 422)
    assert "misfire_grace_time (60 s)" in errors["errors"]["next_run_time"]
    assert job_ids(client) == []
    late = {**body, "next_run_time": ago(90), "misfire_grace_time": 30}
    assert_error(client.post("/scheduler/jobs", json=late, headers=ADMIN), 422, "next_run_time")
    assert job_ids(client) == []


def test_the_grace_of_a_job_that_gives_none_is_the_job_default(
    make_app: Callable[..., Flask],
) -> None:
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": "600"}
    client = make_app(SCHEDULER_JOB_DEFAULTS=defaults).test_client()  # a string, as from env
    assert add(client, {**HOURLY, "next_run_time": ago(300)})["misfire_grace_time"] == 600
    late = {**HOURLY, "id": "late", "next_run_time": ago(900)}
    assert_error(client.post("/scheduler/jobs", json=late, headers=ADMIN), 422, "next_run_time")
    assert job_ids(client) == ["h"]


def test_a_next_run_time_further_back_than_the_grace_is_422_on_patch(client: FlaskClient) -> None:
    before = add(client, HOURLY)
    for value in ("0001-01-01T00:00:00", ago(600)):
        response = client.patch("/scheduler/jobs/h", json={"next_run_time": value}, headers=ADMIN)
        assert_error(response, 422, "next_run_time")
        assert get(client, "h") == before


def test_a_next_run_time_within_the_grace_is_kept_as_given(client: FlaskClient) -> None:
    """As in Flask-APScheduler: the job fires at once (a slow client's "now" still runs)."""
    given = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    created = add(client, {**HOURLY, "next_run_time": given.isoformat()})
    assert when(created) == given
    given -= timedelta(seconds=20)
    patch = {"next_run_time": given.isoformat()}
    patched = client.patch("/scheduler/jobs/h", json=patch, headers=ADMIN)
    assert when(patched.get_json()) == given
    assert when(get(client, "h")) == given


def test_without_a_grace_limit_any_past_next_run_time_is_accepted(client: FlaskClient) -> None:
    body = {**HOURLY, "misfire_grace_time": None, "next_run_time": "0001-01-01T00:00:00"}
    job = add(client, body)  # the firing loop walks its due instants with bounded work
    assert (job["misfire_grace_time"], when(job)) == (None, datetime(1, 1, 1, tzinfo=UTC))


# -- cron triggers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra", [{}, {"timezone": "UTC"}, {"start_date": "2030-01-01"}, {"jitter": 5}]
)
def test_a_cron_trigger_needs_a_field(client: FlaskClient, extra: dict) -> None:
    """{"trigger": "cron"} alone made every field "*": a job every second."""
    body = {**CRON, **extra}
    assert_error(client.post("/scheduler/jobs", json=body, headers=ADMIN), 400, "trigger")
    assert job_ids(client) == []
    before = add(client, HOURLY)
    response = client.patch("/scheduler/jobs/h", json={"trigger": "cron", **extra}, headers=ADMIN)
    assert_error(response, 400, "trigger")
    assert get(client, "h") == before
    client.delete("/scheduler/jobs/h", headers=ADMIN)


NEVER = [
    {"month": "4,6,9,11", "day": 31},
    {"month": 2, "day": 30},
    {"week": 53, "month": 2},
    {"day": "2nd tue", "day_of_week": "mon"},
]


def test_a_cron_that_never_fires_is_refused_with_bounded_work(client: FlaskClient) -> None:
    """Proving it walked APScheduler's search to the year 9999: up to 3.5 s of CPU a request
    with the GIL held (4.5 s for these four, once each)."""
    before = add(client, HOURLY)
    spent, messages = 0.0, set()
    for fields in NEVER:
        start = time.thread_time()  # this thread's CPU: the test client runs the view here
        response = client.post("/scheduler/jobs", json={**CRON, **fields}, headers=ADMIN)
        patch = client.patch("/scheduler/jobs/h", json={"trigger": "cron", **fields}, headers=ADMIN)
        spent += time.thread_time() - start
        messages.add(assert_error(response, 422, "trigger")["error_message"])
        assert_error(patch, 422, "trigger")
    assert spent < 1.0, f"{spent:.2f} s of CPU for {2 * len(NEVER)} requests"
    assert messages == {f"the trigger does not fire within {HORIZON_YEARS} years"}
    assert job_ids(client) == ["h"]
    assert get(client, "h") == before


def test_a_cron_is_searched_over_the_years_it_allows(client: FlaskClient) -> None:
    # a far year is one year to search
    job = add(client, {**CRON, "year": "2099", "month": 3, "day": 1})
    assert when(job) == datetime(2099, 3, 1, tzinfo=UTC)
    # rare but within the horizon: February 29 on a Monday
    rare = when(add(client, {**CRON, "id": "rare", "month": 2, "day": 29, "day_of_week": "mon"}))
    assert (rare.month, rare.day, rare.weekday()) == (2, 29, 0)
    # provably never: the only year it allows has no April 31
    never = {**CRON, "id": "never", "year": "2030", "month": 4, "day": 31}
    body = assert_error(client.post("/scheduler/jobs", json=never, headers=ADMIN), 422, "trigger")
    assert body["errors"]["trigger"] == "never fires"
    # fires in 2112, 39 years after its start: past the horizon
    beyond = {**CRON, "id": "beyond", "month": 2, "day": 29, "day_of_week": "mon"}
    beyond["start_date"] = "2073-01-01"
    body = assert_error(client.post("/scheduler/jobs", json=beyond, headers=ADMIN), 422, "trigger")
    assert f"within {HORIZON_YEARS} years of 2073-01-01" in body["errors"]["trigger"]
    assert sorted(job_ids(client)) == ["c", "rare"]


def test_resume_looks_for_the_next_fire_time_within_the_horizon(
    app: Flask, client: FlaskClient
) -> None:
    from apscheduler.triggers.cron import CronTrigger

    add(client, HOURLY)
    assert client.post("/scheduler/jobs/h/pause", headers=ADMIN).status_code == 200
    # a cron that never fires can only be stored underneath the API (an older release, or a
    # Flask-APScheduler sharing the store)
    never = CronTrigger(week=53, month=2, timezone=UTC)
    app.extensions["scheduler_service"].scheduler.modify_job("h", trigger=never)
    start = time.thread_time()
    assert_error(client.post("/scheduler/jobs/h/resume", headers=ADMIN), 409)
    assert time.thread_time() - start < 0.5
    assert get(client, "h")["next_run_time"] is None


# -- args and kwargs ----------------------------------------------------------------------------


def nested(levels: int) -> list:
    """A list ``levels`` deep: nested(1) == [], nested(2) == [[]]."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


# A function that takes any JSON value, and a body depth limit above the args' own, so that
# the args' bounds (which also hold for jobs declared in config) are what refuses.
FREE = {**SEED, "func": "tests.app_jobs:keep"}


@pytest.fixture
def free_client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(
        SCHEDULER_ALLOWED_MODULES=["jobs", "tests.app_jobs"], SCHEDULER_MAX_JSON_DEPTH=64
    ).test_client()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"args": [nested(60)]}, "args"),  # 500 deep, pickling raised RecursionError: a 500
        ({"args": [nested(MAX_ARGS_DEPTH)]}, "args"),  # the args list makes it one deeper
        ({"args": [], "kwargs": {"name": nested(MAX_ARGS_DEPTH)}}, "kwargs"),
        ({"args": ["x" * MAX_ARGS_BYTES]}, "args"),
        ({"args": [list(range(MAX_ARGS_BYTES))]}, "args"),
        ({"args": [], "kwargs": {"name": "é" * (MAX_ARGS_BYTES // 2)}}, "kwargs"),
    ],
)
def test_args_too_deep_or_too_big_are_400(
    free_client: FlaskClient, extra: dict, field: str
) -> None:
    client = free_client
    body = assert_error(
        client.post("/scheduler/jobs", json={**FREE, **extra}, headers=ADMIN), 400, field
    )
    assert "levels deep" in body["errors"][field] or "bytes as JSON" in body["errors"][field]
    assert job_ids(client) == []
    before = add(client, FREE)
    response = client.patch("/scheduler/jobs/job2", json=extra, headers=ADMIN)
    assert_error(response, 400, field)
    assert get(client, "job2") == before


def test_args_up_to_the_bounds_are_kept(free_client: FlaskClient) -> None:
    client = free_client
    deepest = add(client, {**FREE, "args": [nested(MAX_ARGS_DEPTH - 1)]})
    assert deepest["args"] == [nested(MAX_ARGS_DEPTH - 1)]
    biggest = "x" * (MAX_ARGS_BYTES - len('[""]'))
    assert add(client, {**FREE, "id": "big", "args": [biggest]})["args"] == [biggest]


def test_the_body_depth_limit_refuses_deep_args_over_http_first(client: FlaskClient) -> None:
    body = {**SEED, "args": [nested(500)]}
    refused = assert_error(client.post("/scheduler/jobs", json=body, headers=ADMIN), 400)
    assert "SCHEDULER_MAX_JSON_DEPTH" in refused["error_message"]
    assert job_ids(client) == []


# -- the firing loop's walk of due instants -----------------------------------------------------


def test_the_walk_of_due_instants_survives_a_jump_to_before_the_year_1() -> None:
    """Past LEDGER_LIMIT instants the walk jumps to LEDGER_LIMIT spacings before now; for a
    job due since the year 1 at just over a hundredth of the time since, that is before the
    year 1: OverflowError, out of the scheduler's thread, which then never fired again."""
    now = datetime.now(UTC)
    start = datetime(1, 1, 1, tzinfo=UTC)
    spacing = timedelta(seconds=int(((now - start) / (LEDGER_LIMIT - 0.5)).total_seconds()))
    trigger = IntervalTrigger(seconds=int(spacing.total_seconds()), start_date=start, timezone=UTC)
    job = SimpleNamespace(id="ancient", trigger=trigger, next_run_time=start)
    run_times, next_run = due_run_times(job, now)
    assert run_times == [start + n * spacing for n in range(LEDGER_LIMIT)]
    assert next_run == start + LEDGER_LIMIT * spacing > now


# -- migration 0005 on MariaDB ------------------------------------------------------------------


def test_migration_0005_makes_the_run_history_exact_on_mariadb(
    make_app: Callable[..., Flask],
) -> None:
    import flask_migrate
    from sqlalchemy import text

    from scheduler_service.extensions import db
    from tests.support.databases import dispose, fresh_database

    def collation() -> str:
        with app.app_context(), db.engine.connect() as conn:
            query = (
                "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA ="
                " DATABASE() AND TABLE_NAME = 'scheduler_runs' AND COLUMN_NAME = 'job_id'"
            )
            return conn.execute(text(query)).scalar()

    with fresh_database("TEST_MYSQL_URL") as url:
        app = make_app(SCHEDULER_DATABASE_URL=url, SCHEDULER_DATABASE_MIGRATE=False)
        try:
            with app.app_context():
                flask_migrate.upgrade(revision="0004_lifecycle")
            default = collation()  # the server's: utf8mb4_general_ci, ignoring case
            assert default != "utf8mb4_nopad_bin"
            with app.app_context():
                flask_migrate.upgrade(revision="0005_exact_job_ids")
            assert collation() == "utf8mb4_nopad_bin"
            with app.app_context():
                flask_migrate.downgrade(revision="0004_lifecycle")
            assert collation() == default
        finally:
            dispose(app)
