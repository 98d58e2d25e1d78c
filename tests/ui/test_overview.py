"""The overview: scheduler state, cluster, failing jobs, runs per hour, lateness."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from scheduler_service.extensions import db
from scheduler_service.runs.models import Run
from tests.ui.page import Element, page, sign_in

NOW = datetime.now(UTC)


def run_row(job_id: str, state: str, ago: timedelta, **fields: Any) -> dict[str, Any]:
    scheduled = NOW - ago
    late = fields.pop("late", 0.01)
    row = {
        "job_id": job_id,
        "job_name": job_id,
        "trigger": "schedule",
        "state": state,
        "attempt": 1,
        "scheduled_run_time": scheduled,
        "started_at": scheduled + timedelta(seconds=late),
        "finished_at": scheduled + timedelta(seconds=late + 1),
        "duration": 1.0,
        "result_truncated": False,
        "log_truncated": False,
    }
    return {**row, **fields}


def record(app: Flask, rows: list[dict[str, Any]]) -> None:
    with app.app_context():
        db.session.execute(insert(Run), rows)
        db.session.commit()


def hour_of(ago: timedelta) -> str:
    return f"{NOW - ago:%Y-%m-%d %H:00}"


def per_hour(overview: Element) -> dict[str, dict[str, int]]:
    """The table's figures: {hour: {state or "total": count}} for the hours with runs."""
    found = {}
    for row in overview.one("table", id="runs-per-hour-table").one("tbody").all("tr"):
        cells = {td["data-state"]: int(td.text()) for td in row.all("td", data_state=True)}
        cells["total"] = int(row.one("td", class_="total").text())
        if cells["total"]:
            found[row["data-hour"]] = cells
    return found


def test_the_overview_shows_the_last_day(claims_app: Flask) -> None:
    """On SQLite, PostgreSQL and MariaDB (the hour buckets are portable SQL)."""
    app, client = claims_app, claims_app.test_client()
    rows = [
        run_row("fine", "succeeded", timedelta(hours=1), late=0.05),
        run_row("fine", "succeeded", timedelta(hours=1, minutes=1), late=2),
        run_row("old-bad", "failed", timedelta(hours=3), error="old failure\nmore", late=40),
        run_row("new-bad", "failed", timedelta(minutes=30), error="new failure\nTraceback"),
        run_row("lost", "unknown", timedelta(hours=2), error=None),
        run_row("healed", "failed", timedelta(hours=2), error="was broken"),
        run_row("healed", "succeeded", timedelta(hours=1, minutes=2)),
        run_row("fine", "succeeded", timedelta(hours=30)),  # before the 24 hours
        run_row("__internal", "failed", timedelta(hours=1), error="not a user job"),
        run_row("fine", "succeeded", timedelta(hours=1), trigger="manual", late=500),
    ]
    record(app, rows)
    sign_in(client, "viewer")
    overview = page(client, "/ui/overview")

    expected: dict[str, Counter[str]] = {}
    for row in rows[:-3] + rows[-1:]:  # not the one before the 24 hours, nor __internal
        hour = f"{row['scheduled_run_time']:%Y-%m-%d %H:00}"
        expected.setdefault(hour, Counter())[row["state"]] += 1
    figures = per_hour(overview)
    assert figures.keys() == expected.keys()
    for hour, counts in expected.items():
        assert {k: v for k, v in figures[hour].items() if v and k != "total"} == counts
    assert figures[hour_of(timedelta(hours=3))]["failed"] == 1
    assert sum(row["total"] for row in figures.values()) == 8  # not the old nor __internal
    assert overview.one("svg", id="runs-per-hour")
    assert len(overview.one("svg", id="runs-per-hour").all("g", data_hour=True)) == 24

    failing = overview.one("table", id="failing").one("tbody").all("tr")
    assert [row["data-job-id"] for row in failing] == ["new-bad", "lost", "old-bad"]
    assert failing[0].one("td", class_="error").text() == "new failure"
    assert failing[0].one("a")["href"] == "/ui/jobs/new-bad"
    assert failing[1]["data-state"] == "unknown"

    summary = overview.one(id="lateness-summary")
    # Scheduled first attempts only: the manual run's 500 s is not counted.
    assert "7 scheduled fires" in summary.text()
    assert summary.one("span", class_="max").text() == "40.000"
    assert float(summary.one("span", class_="p50").text()) < 1
    buckets = {g["data-bucket"]: int(g["data-count"]) for g in overview.all("g", data_bucket=True)}
    assert buckets["> 30 s"] == 1 and buckets["1-5 s"] == 1 and buckets["< 0.1 s"] == 5


def test_state_and_cluster(client: FlaskClient) -> None:
    sign_in(client, "viewer")
    overview = page(client, "/ui/overview")
    state = overview.one("dl", id="scheduler-state")
    info = client.get("/scheduler").get_json()
    assert state.one("dd", class_="state").text() == info["state"]  # the tests' app: paused
    assert state.one("dd", class_="leader").text() == (info["leader_id"] or "none")
    cluster = client.get("/scheduler/cluster")
    if cluster.status_code == 503:  # no replica registry in this process
        assert overview.one(id="cluster-unavailable")
        return
    rows = overview.one("table", id="cluster").all("tr", data_replica_id=True)
    mine = [row for row in rows if row["data-replica-id"] == info["replica_id"]]
    assert len(mine) == 1
    assert mine[0].one("td", class_="role").text() == "leader"
    assert mine[0].one("td", class_="alive").text() == "alive"
    assert overview.one("a", id="nav-overview")["href"] == "/ui/overview"


def test_no_failing_job_says_so(client: FlaskClient) -> None:
    sign_in(client, "viewer")
    overview = page(client, "/ui/overview")
    assert overview.one(id="no-failing").text().startswith("No job")
    assert not overview.all("table", id="failing")
    assert "No scheduled fire" in overview.one(id="lateness-summary").text()
    parts = page(client, "/ui/overview/parts")
    assert parts.one("dl", id="scheduler-state")
    assert not parts.all("header")


def test_many_runs_stay_bounded(app: Flask, client: FlaskClient) -> None:
    rows = [
        run_row(
            f"job{i % 30:02d}",
            "failed" if i % 4 == 0 else "succeeded",
            timedelta(minutes=1 + i % (23 * 60)),
            error=f"error {i}",
        )
        for i in range(2000)
    ]
    # The newest run of each job fails: 30 failing jobs, 20 shown.
    rows += [run_row(f"job{j:02d}", "failed", timedelta(seconds=j + 1)) for j in range(30)]
    record(app, rows)
    sign_in(client, "viewer")
    overview = page(client, "/ui/overview")
    assert sum(row["total"] for row in per_hour(overview).values()) == 2030
    failing = overview.one("table", id="failing").one("tbody").all("tr")
    assert [row["data-job-id"] for row in failing] == [f"job{j:02d}" for j in range(20)]
    assert "2030 scheduled fires" in overview.one(id="lateness-summary").text()


def test_signed_out_goes_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/ui/overview")
    assert response.status_code == 303
    assert "/ui/login" in response.headers["Location"]
