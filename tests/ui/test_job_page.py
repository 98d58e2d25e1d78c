"""A job's page: definition, next fire times in its zone, runs with traceback."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import JOB, add_job
from tests.support.credentials import OPERATOR
from tests.ui.page import page, parse, sign_in


def test_definition_and_next_fires_in_the_job_zone(client: FlaskClient) -> None:
    body = {"id": "night", "func": JOB["func"], "args": ["x"], "trigger": "cron", "hour": 2}
    add_job(client, {**body, "minute": 30, "timezone": "Europe/Paris"})
    sign_in(client, "viewer")
    job = page(client, "/ui/jobs/night")
    definition = job.one("dl", id="job-definition")
    assert definition.one("dd", class_="func").text() == JOB["func"]
    assert definition.one("dd", class_="args").text() == '["x"]'
    assert definition.one("dd", class_="trigger").text() == "every day at 02:30 (Europe/Paris)"
    assert definition.one("dd", class_="store").text() == "default"
    fires = [li.text() for li in job.one("ol", id="next-fires").all("li")]
    assert len(fires) == 10
    assert all(" 02:30:00+0" in fire for fire in fires)  # +01:00 or +02:00: Paris time
    assert len(set(fires)) == 10
    assert job.one(id="next-fires-zone").text() == "Europe/Paris"


def test_a_schedule_that_ends_has_fewer_fires(client: FlaskClient) -> None:
    add_job(
        client,
        {
            "id": "once",
            "func": JOB["func"],
            "args": ["x"],
            "trigger": "date",
            "run_date": "2099-01-01T00:00:00",
        },
    )
    sign_in(client, "viewer")
    fires = page(client, "/ui/jobs/once").one("ol", id="next-fires").all("li")
    assert [li.text() for li in fires] == ["2099-01-01 00:00:00+00:00"]


def test_a_failed_run_shows_its_error_and_traceback(client: FlaskClient) -> None:
    add_job(
        client,
        {
            "id": "bad",
            "func": "jobs.examples:fail",
            "args": ["it broke"],
            "trigger": "interval",
            "hours": 1,
        },
    )
    response = client.post("/scheduler/jobs/bad/run?wait=20", headers=OPERATOR)
    assert response.status_code == 202
    run = response.get_json()
    assert run["state"] == "failed", run
    sign_in(client, "viewer")
    row = page(client, "/ui/jobs/bad").one("table", id="runs").one("tr", data_run_id=str(run["id"]))
    assert row["data-state"] == "failed"
    assert row.one("td", class_="state").text() == "failed"
    assert row.one("td", class_="trigger").text() == "manual"
    assert "it broke" in row.one("td", class_="error").text()
    assert "raise RuntimeError(message)" in row.one("pre", class_="traceback").text()
    assert row.one("pre", class_="traceback").parent.tag == "details"  # type: ignore[union-attr]
    assert row.one("td", class_="duration").text().endswith(" s")
    # The fragment the live script swaps in holds the same row, and the table shows the outcome.
    fragment = parse(client.get("/ui/jobs/bad/runs").get_data(as_text=True))
    assert fragment.one("tbody").one("tr", data_run_id=str(run["id"]))["data-state"] == "failed"
    outcome = page(client, "/ui/jobs").one("tr", data_job_id="bad").one("td", class_="last-outcome")
    assert outcome.text().startswith("failed ")


def test_the_runs_table_is_wired_for_live_updates(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "viewer")
    table = page(client, "/ui/jobs/a").one("table", id="runs")
    assert table["data-events-url"] == "/scheduler/events"
    assert table["data-runs-url"] == "/ui/jobs/a/runs"
    with client.get("/ui/static/ui.js") as script:
        assert script.status_code == 200
        assert b"EventSource" in script.data


def test_an_unknown_job_is_a_404_page(client: FlaskClient) -> None:
    sign_in(client, "viewer")
    response = client.get("/ui/jobs/nope")
    assert response.status_code == 404
    assert "Job nope not found" in parse(response.get_data(as_text=True)).one(role="alert").text()
