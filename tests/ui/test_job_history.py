"""A job page's history: the duration plot (inline SVG), its summary, and the fire ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from scheduler_service.extensions import db
from scheduler_service.runs.models import Run
from scheduler_service.runs.stats import percentile
from scheduler_service.ui.plots import Point, durations_svg, summary
from tests.support.api import JOB, add_job
from tests.ui.page import page, parse, sign_in

T0 = datetime(2026, 1, 5, 2, 30, tzinfo=UTC)


def add_runs(app: Flask, job_id: str, runs: list[dict]) -> None:
    with app.app_context():
        for fields in runs:
            values = {"trigger": "schedule", "attempt": 1, "result_truncated": False}
            db.session.add(Run(job_id=job_id, log_truncated=False, **{**values, **fields}))
        db.session.commit()


def finished(minutes: int, state: str, duration: float, **fields: object) -> dict:
    at = T0 + timedelta(minutes=minutes)
    return {
        "state": state,
        "scheduled_run_time": at,
        "started_at": at + timedelta(seconds=1),
        "finished_at": at + timedelta(seconds=1 + duration),
        "duration": duration,
        **fields,
    }


def test_the_plot_marks_failed_runs_by_shape_and_titles_each_point(
    app: Flask, client: FlaskClient
) -> None:
    add_job(client, JOB)
    add_runs(
        app,
        "a",
        [
            finished(0, "succeeded", 1.0),
            finished(5, "failed", 4.0),
            finished(10, "succeeded", 2.0),
            {"state": "running", "scheduled_run_time": T0 + timedelta(minutes=15)},
        ],
    )
    sign_in(client, "viewer")
    job = page(client, "/ui/jobs/a")
    svg = job.one("svg", id="durations")
    points = svg.all("g", class_="point")
    assert [p["data-state"] for p in points] == ["succeeded", "failed", "succeeded"]
    assert [bool(p.all("circle")) for p in points] == [True, False, True]  # failed: a cross
    assert points[1].all("path") and "point-bad" in points[1]["class"]
    assert points[1].one("title").text() == "2026-01-05 02:35:01+00:00: failed, 4.000 s"
    text = job.one(id="durations-summary").text()
    assert text.startswith("p50 2.00 s, max 4.00 s, 3 runs (1 failed)"), text


def test_the_plot_draws_at_most_the_last_100_finished_runs(app: Flask, client: FlaskClient) -> None:
    add_job(client, JOB)
    add_runs(app, "a", [finished(i, "succeeded", 0.5) for i in range(130)])
    sign_in(client, "viewer")
    job = page(client, "/ui/jobs/a")
    points = job.one("svg", id="durations").all("g", class_="point")
    assert len(points) == 100
    assert points[-1].one("title").text().startswith("2026-01-05 04:39:01")  # the newest
    assert "100 runs" in job.one(id="durations-summary").text()


def test_no_run_no_points() -> None:
    svg = parse(durations_svg([])).one("svg", id="durations")
    assert svg.all("g", class_="point") == []
    assert summary([]) == "No finished run yet."


def test_text_in_the_plot_is_escaped() -> None:
    point = Point(T0, "<script>", 1.0)
    drawn = durations_svg([point])
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn


def test_percentile_is_nearest_rank() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([5.0], 0.5) == 5.0


def test_the_fires_table_is_the_ledger_newest_first(app: Flask, client: FlaskClient) -> None:
    add_job(client, JOB)
    add_runs(
        app,
        "a",
        [
            finished(0, "succeeded", 1.0),
            {"state": "missed", "scheduled_run_time": T0 + timedelta(minutes=5)},
            finished(10, "failed", 1.0),
            finished(10, "succeeded", 1.0, attempt=2),  # the retry of the 02:40 instant
            {"state": "coalesced", "scheduled_run_time": T0 + timedelta(minutes=15)},
            finished(20, "succeeded", 1.0, trigger="manual"),  # not a fire
        ],
    )
    sign_in(client, "viewer")
    rows = page(client, "/ui/jobs/a").one("table", id="fires").one("tbody").all("tr")
    assert [r["data-outcome"] for r in rows] == ["coalesced", "run", "missed", "run"]
    assert rows[0]["data-fire-time"].startswith("2026-01-05T02:45:00")
    assert rows[0].one("td", class_="fire-time").text() == "2026-01-05 02:45:00"
    assert rows[1].one("td", class_="outcome").text() == "ran: failed; retries: succeeded"
    assert rows[2].one("td", class_="outcome").text() == "missed"
    link = rows[3].one("td", class_="run-id").one("a")
    assert link.text().startswith("run ") and link["href"].startswith("/scheduler/runs/")
    # The same records as GET /scheduler/jobs/a/fires, in the same order.
    api = client.get("/scheduler/jobs/a/fires").get_json()
    assert [f["scheduled_run_time"] for f in api] == [r["data-fire-time"] for r in rows]


def test_a_job_without_fires_says_so(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "viewer")
    table = page(client, "/ui/jobs/a").one("table", id="fires")
    assert table.one("tr", class_="empty").text().startswith("No scheduled instant yet")


def test_only_a_failed_run_has_its_disclosure_in_the_error_style(
    app: Flask, client: FlaskClient
) -> None:
    add_job(client, JOB)
    add_runs(
        app,
        "a",
        [
            finished(0, "succeeded", 1.0, log="all good"),
            finished(5, "failed", 1.0, error="boom", traceback="Traceback: boom"),
        ],
    )
    sign_in(client, "viewer")
    runs = page(client, "/ui/jobs/a").one("table", id="runs")
    by_state = {row["data-state"]: row for row in runs.all("tr", data_state=True)}
    assert by_state["succeeded"].one("details")["class"] == "details-plain"
    assert by_state["failed"].one("details")["class"] == "details-bad"
    assert by_state["failed"].one("span", class_="run-error").text() == "boom"
