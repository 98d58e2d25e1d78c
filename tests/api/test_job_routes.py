"""The job routes of SPEC §3: every success path as Flask-APScheduler answers it, every error."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import SEED, assert_error
from tests.support.credentials import ADMIN, OPERATOR, VIEWER
from tests.support.waiting import wait_for


def add(client: FlaskClient, body: dict, **kw) -> dict:
    response = client.post("/scheduler/jobs", json=body, headers=ADMIN, **kw)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def job_ids(client: FlaskClient) -> list[str]:
    return [job["id"] for job in client.get("/scheduler/jobs", headers=ADMIN).get_json()]


# -- success paths ----------------------------------------------------------------------------


def test_seed_example_returns_the_job(client: FlaskClient) -> None:
    job = add(client, SEED)
    assert job["id"] == "job2"
    assert job["name"] == "job2"
    assert job["func"] == "jobs.examples:print_test"
    assert job["args"] == ["linda"]
    assert job["kwargs"] == {}
    assert job["trigger"] == "interval"
    assert job["seconds"] == 5
    assert job["jobstore"] == "default"
    assert job["executor"] == "default"
    next_run = datetime.fromisoformat(job["next_run_time"])
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(seconds=5)


def test_get_list_and_total_count(client: FlaskClient) -> None:
    for i in range(5):
        add(client, {**SEED, "id": f"j{i}", "seconds": 10 + i})
    listing = client.get("/scheduler/jobs", headers=ADMIN)
    assert listing.status_code == 200
    assert isinstance(listing.get_json(), list)
    assert listing.headers["X-Total-Count"] == "5"
    assert sorted(job_ids(client)) == [f"j{i}" for i in range(5)]
    one = client.get("/scheduler/jobs/j3", headers=ADMIN)
    assert one.status_code == 200 and one.get_json()["seconds"] == 13


def test_list_pages_and_filters(client: FlaskClient) -> None:
    for i in range(5):
        add(client, {**SEED, "id": f"i{i}", "seconds": 10 + i})
    add(
        client,
        {
            "id": "c1",
            "func": "jobs.examples:print_test",
            "args": ["x"],
            "trigger": "cron",
            "year": "2099",  # always after the interval jobs, whatever the clock says
        },
    )
    client.post("/scheduler/jobs/i0/pause", headers=ADMIN)
    page = client.get("/scheduler/jobs?limit=2&offset=1", headers=ADMIN)
    assert page.headers["X-Total-Count"] == "6"
    assert [j["id"] for j in page.get_json()] == ["i2", "i3"]  # soonest first
    cron = client.get("/scheduler/jobs?trigger=cron", headers=ADMIN).get_json()
    assert [j["id"] for j in cron] == ["c1"]
    paused = client.get("/scheduler/jobs?paused=true", headers=ADMIN)
    assert [j["id"] for j in paused.get_json()] == ["i0"]
    assert paused.headers["X-Total-Count"] == "1"
    store = client.get("/scheduler/jobs?jobstore=default&paused=false", headers=ADMIN)
    assert store.headers["X-Total-Count"] == "5"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=x",
        "offset=-1",
        "limit=100000",
        "trigger=weekly",
        "paused=maybe",
        "jobstore=nope",
    ],
)
def test_list_bad_query_is_400(client: FlaskClient, query: str) -> None:
    assert_error(client.get(f"/scheduler/jobs?{query}", headers=ADMIN), 400)


def test_cron_fields_and_crontab(client: FlaskClient) -> None:
    job = add(
        client,
        {
            "id": "c",
            "func": "jobs.examples:print_test",
            "args": ["x"],
            "trigger": "cron",
            "day": "3rd fri",
            "hour": "1-5/2",
            "minute": "0,30",
            "timezone": "Europe/Paris",
        },
    )
    assert (job["day"], job["hour"], job["minute"]) == ("3rd fri", "1-5/2", "0,30")
    assert job["timezone"] == "Europe/Paris"
    tab = add(
        client,
        {
            "id": "t",
            "func": "jobs.examples:print_test",
            "args": ["x"],
            "trigger": "cron",
            "crontab": "*/5 * * * 0",
        },
    )
    assert tab["minute"] == "*/5"
    assert tab["day_of_week"] == "sun"  # crontab's 0 is Sunday (APScheduler's 0 is Monday)
    assert datetime.fromisoformat(tab["next_run_time"]).weekday() == 6


def test_date_trigger_accepts_both_date_forms(client: FlaskClient) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    iso_job = add(
        client,
        {
            "id": "d1",
            "func": "jobs.examples:print_test",
            "args": ["x"],
            "trigger": "date",
            "run_date": later.isoformat(),
        },
    )
    plain = later.strftime("%Y-%m-%d %H:%M:%S")
    plain_job = add(
        client,
        {
            "id": "d2",
            "func": "jobs.examples:print_test",
            "args": ["x"],
            "trigger": "date",
            "run_date": plain,
        },
    )
    assert iso_job["trigger"] == plain_job["trigger"] == "date"
    assert plain_job["run_date"].startswith(later.strftime("%Y-%m-%dT%H:%M:%S"))


def test_legacy_nested_trigger_is_accepted(client: FlaskClient) -> None:
    job = add(
        client,
        {
            "id": "n",
            "func": "jobs.examples:print_test",
            "args": ["x"],
            "trigger": {"type": "interval", "minutes": 2},
        },
    )
    assert (job["trigger"], job["minutes"]) == ("interval", 2)


def test_body_without_content_type_is_read_as_json(client: FlaskClient) -> None:
    response = client.post("/scheduler/jobs", data=json.dumps(SEED), headers=ADMIN)
    assert response.status_code == 200
    assert response.get_json()["id"] == "job2"


def test_patch_changes_fields_and_trigger(client: FlaskClient) -> None:
    add(client, SEED)
    response = client.patch(
        "/scheduler/jobs/job2", json={"args": ["bob"], "minutes": 2}, headers=ADMIN
    )
    assert response.status_code == 200
    job = response.get_json()
    assert job["args"] == ["bob"]
    assert job["minutes"] == 2 and "seconds" not in job  # units replace each other
    stored = client.get("/scheduler/jobs/job2", headers=ADMIN).get_json()
    assert stored["args"] == ["bob"] and stored["minutes"] == 2
    cron = client.patch(
        "/scheduler/jobs/job2", json={"trigger": "cron", "hour": "3"}, headers=ADMIN
    ).get_json()
    assert (cron["trigger"], cron["hour"]) == ("cron", "3")
    assert "minutes" not in cron


def test_patch_cron_field_merges(client: FlaskClient) -> None:
    add(
        client,
        {
            "id": "c",
            "func": "jobs.examples:print_test",
            "args": ["x"],
            "trigger": "cron",
            "hour": "3",
            "minute": "15",
        },
    )
    job = client.patch("/scheduler/jobs/c", json={"crontab": "0 4 * * *"}, headers=ADMIN).get_json()
    assert (job["hour"], job["minute"]) == ("4", "0")


def test_pause_resume_keeps_paused_job_paused_on_patch(client: FlaskClient) -> None:
    add(client, SEED)
    paused = client.post("/scheduler/jobs/job2/pause", headers=OPERATOR)
    assert paused.status_code == 200 and paused.get_json()["next_run_time"] is None
    patched = client.patch("/scheduler/jobs/job2", json={"seconds": 60}, headers=ADMIN)
    assert patched.get_json()["next_run_time"] is None
    resumed = client.post("/scheduler/jobs/job2/resume", headers=OPERATOR)
    assert resumed.status_code == 200
    assert resumed.get_json()["next_run_time"] is not None


def test_delete(client: FlaskClient) -> None:
    add(client, SEED)
    response = client.delete("/scheduler/jobs/job2", headers=ADMIN)
    assert response.status_code == 204 and response.data == b""
    assert_error(client.get("/scheduler/jobs/job2", headers=ADMIN), 404)
    assert job_ids(client) == []


def test_replace_existing_only_when_asked(client: FlaskClient) -> None:
    add(client, SEED)
    assert_error(client.post("/scheduler/jobs", json={**SEED, "seconds": 9}, headers=ADMIN), 409)
    assert client.get("/scheduler/jobs/job2", headers=ADMIN).get_json()["seconds"] == 5
    replaced = add(client, {**SEED, "seconds": 9, "replace_existing": True})
    assert replaced["seconds"] == 9


def test_tasks_lists_the_allowed_functions(client: FlaskClient) -> None:
    tasks = {t["func"]: t for t in client.get("/scheduler/tasks", headers=VIEWER).get_json()}
    assert {
        "jobs.examples:print_test",
        "jobs.examples:fail",
        "jobs.examples:sleep",
        "jobs.ops:http_check",
        "jobs.ops:disk_usage",
        "jobs.ops:cleanup_old_files",
    } <= set(tasks)
    assert tasks["jobs.examples:print_test"]["parameters"][0]["name"] == "name"
    assert tasks["jobs.examples:print_test"]["doc"]
    assert not any(":_" in ref or ref.startswith("os") for ref in tasks)


# -- error paths: 400 / 404 / 409 / 422, and nothing changes --------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"id": "x", "func": "os:system", "args": ["id"], "trigger": "interval", "seconds": 5},
            "func",
        ),
        ({**SEED, "func": "jobs.examples:os"}, "func"),
        ({**SEED, "func": "jobs.examples:_private"}, "func"),
        ({**SEED, "func": "jobs.nope:f"}, "func"),
        ({**SEED, "func": "not a ref"}, "func"),
        ({**SEED, "args": []}, "args"),
        ({**SEED, "args": "linda"}, "args"),
        ({**SEED, "kwargs": {"nope": 1}}, "args"),
        ({**SEED, "bogus": 1}, "bogus"),
        ({**SEED, "trigger": "weekly"}, "trigger"),
        ({**SEED, "seconds": "five"}, "seconds"),
        ({**SEED, "seconds": -1}, "seconds"),
        ({**SEED, "hour": "3"}, "hour"),
        ({**SEED, "executor": "gpu"}, "executor"),
        ({**SEED, "jobstore": "nope"}, "jobstore"),
        ({**SEED, "max_instances": 0}, "max_instances"),
        ({**SEED, "timezone": "Mars/Olympus"}, "timezone"),
        ({**SEED, "start_date": "yesterday"}, "start_date"),
        ({**SEED, "id": "a/b"}, "id"),
        ({**SEED, "id": ""}, "id"),
        ({"func": "jobs.examples:print_test", "trigger": "interval", "seconds": 5}, "id"),
        (
            {
                "id": "c",
                "func": "jobs.examples:print_test",
                "args": ["x"],
                "trigger": "cron",
                "hour": "25",
            },
            "hour",
        ),
        (
            {
                "id": "c",
                "func": "jobs.examples:print_test",
                "args": ["x"],
                "trigger": "cron",
                "crontab": "* * *",
            },
            "crontab",
        ),
        (
            {
                "id": "c",
                "func": "jobs.examples:print_test",
                "args": ["x"],
                "trigger": "cron",
                "crontab": "* * * * *",
                "hour": "1",
            },
            "hour",
        ),
        (
            {"id": "d", "func": "jobs.examples:print_test", "args": ["x"], "trigger": "date"},
            "run_date",
        ),
    ],
)
def test_bad_job_is_400_and_changes_nothing(client: FlaskClient, body: dict, field: str) -> None:
    assert_error(client.post("/scheduler/jobs", json=body, headers=ADMIN), 400, field)
    assert job_ids(client) == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"trigger": "date", "run_date": "2001-01-01 00:00:00"}, "run_date"),
        (
            {
                "trigger": "interval",
                "seconds": 5,
                "start_date": "2030-01-02",
                "end_date": "2030-01-01",
            },
            "end_date",
        ),
        ({"trigger": "interval"}, "seconds"),
        ({"trigger": "cron", "month": "2", "day": "30"}, "trigger"),
    ],
)
def test_impossible_schedule_is_422(client: FlaskClient, extra: dict, field: str) -> None:
    body = {"id": "x", "func": "jobs.examples:print_test", "args": ["x"], **extra}
    assert_error(client.post("/scheduler/jobs", json=body, headers=ADMIN), 422, field)
    assert job_ids(client) == []


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"job"', b"\xff\xfe"])
def test_malformed_body_is_400_json(client: FlaskClient, raw: bytes) -> None:
    response = client.post(
        "/scheduler/jobs", data=raw, headers=ADMIN, content_type="application/json"
    )
    assert_error(response, 400)
    assert job_ids(client) == []


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", None],
)
def test_any_content_type_is_read_as_json(client: FlaskClient, content_type: str | None) -> None:
    # As Flask-APScheduler (get_json(force=True)): `curl -d '{...}'` sends a form type.
    response = client.post(
        "/scheduler/jobs", data=json.dumps(SEED), headers=ADMIN, content_type=content_type
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["id"] == "job2"
    assert job_ids(client) == ["job2"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/scheduler/jobs/nope"),
        ("delete", "/scheduler/jobs/nope"),
        ("patch", "/scheduler/jobs/nope"),
        ("post", "/scheduler/jobs/nope/pause"),
        ("post", "/scheduler/jobs/nope/resume"),
        ("post", "/scheduler/jobs/nope/run"),
    ],
)
def test_unknown_job_is_404(client: FlaskClient, method: str, path: str) -> None:
    kwargs = {"json": {"args": ["x"]}} if method == "patch" else {}
    body = assert_error(getattr(client, method)(path, headers=ADMIN, **kwargs), 404)
    assert body["error_message"] == "Job nope not found"  # Flask-APScheduler's wording


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    assert_error(client.get("/scheduler/nothing", headers=ADMIN), 404)
    response = client.put("/scheduler/jobs", headers=ADMIN)
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("patch", "code", "field"),
    [
        ({"id": "other"}, 400, "id"),
        ({"func": "os:system"}, 400, "func"),
        ({"args": ["a"], "seconds": "x"}, 400, "seconds"),
        ({"args": ["a", "b"]}, 400, "args"),
        ({"jobstore": "other"}, 400, "jobstore"),
        ({"hour": "3"}, 400, "hour"),
        ({"trigger": "date", "run_date": "2001-01-01T00:00:00"}, 422, "run_date"),
        ({"unknown": True}, 400, "unknown"),
    ],
)
def test_bad_patch_applies_nothing(client: FlaskClient, patch: dict, code: int, field: str) -> None:
    before = add(client, SEED)
    assert_error(client.patch("/scheduler/jobs/job2", json=patch, headers=ADMIN), code, field)
    after = client.get("/scheduler/jobs/job2", headers=ADMIN).get_json()
    assert after == before


def test_patch_with_non_object_body_is_400(client: FlaskClient) -> None:
    add(client, SEED)
    assert_error(client.patch("/scheduler/jobs/job2", json=[1], headers=ADMIN), 400)


def test_resume_a_job_with_no_fire_time_left_is_409(app: Flask, client: FlaskClient) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    add(client, SEED)
    client.post("/scheduler/jobs/job2/pause", headers=ADMIN)
    # An end date that has passed can only come from time passing; set it underneath the API.
    ended = IntervalTrigger(
        seconds=5,
        start_date=datetime(2001, 1, 1, tzinfo=UTC),
        end_date=datetime(2001, 1, 2, tzinfo=UTC),
    )
    app.extensions["scheduler_service"].scheduler.modify_job("job2", trigger=ended)
    assert_error(client.post("/scheduler/jobs/job2/resume", headers=ADMIN), 409)
    assert job_ids(client) == ["job2"]  # APScheduler would have deleted it


# -- run now, and firing ----------------------------------------------------------------------


def test_run_now_goes_through_the_executor(client: FlaskClient) -> None:
    add(
        client,
        {
            "id": "slow",
            "func": "jobs.examples:sleep",
            "args": [2],
            "trigger": "interval",
            "hours": 1,
        },
    )
    first = client.post("/scheduler/jobs/slow/run", headers=OPERATOR)
    assert first.status_code == 202
    run = first.get_json()  # the run record (SPEC §6)
    assert (run["job_id"], run["trigger"]) == ("slow", "manual")
    assert run["state"] in ("pending", "submitted", "running")  # pending: the leader takes it
    # Had the first run happened inside the request, it would be over; it is still running,
    # so the second submission hits max_instances=1.
    assert_error(client.post("/scheduler/jobs/slow/run", headers=OPERATOR), 409)


def test_run_now_on_the_process_executor_runs_in_another_process(
    client: FlaskClient, tmp_path: Path
) -> None:
    log = tmp_path / "fires.log"
    add(
        client,
        {
            "id": "p",
            "func": "jobs.examples:record",
            "args": [str(log), "manual"],
            "trigger": "interval",
            "hours": 1,
            "executor": "process",
        },
    )
    assert client.post("/scheduler/jobs/p/run", headers=OPERATOR).status_code == 202
    line = wait_for(lambda: log.exists() and log.read_text().strip())
    _, pid, value = line.split()
    assert value == "manual"
    assert int(pid) != os.getpid()


def test_a_scheduled_job_fires(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    log = tmp_path / "fires.log"
    add(
        client,
        {
            "id": "tick",
            "func": "jobs.examples:record",
            "args": [str(log), "tick"],
            "trigger": "interval",
            "seconds": 1,
        },
    )
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2)
    assert all(line.endswith(f"{os.getpid()} tick") for line in log.read_text().splitlines())


def test_refused_function_is_named_even_with_other_errors(client: FlaskClient) -> None:
    # The example: no trigger at all, but the refusal of os:system must be said.
    body = {"id": "x", "func": "os:system", "args": ["id"]}
    errors = assert_error(
        client.post("/scheduler/jobs", json=body, headers=ADMIN), 400, "func", "trigger"
    )["errors"]
    assert "outside the allowed job modules" in errors["func"]
    assert job_ids(client) == []
