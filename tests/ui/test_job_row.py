"""The jobs table's one-row fragment (/ui/jobs/<id>/row) the live script swaps in."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import JOB, add_job
from tests.support.credentials import ADMIN, OPERATOR
from tests.ui.page import Element, page, parse, sign_in


def _row(client: FlaskClient, url: str, status: int = 200) -> Element:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return parse(response.get_data(as_text=True))


def test_the_row_is_the_tables_row(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "viewer")
    table_row = page(client, "/ui/jobs").one("table", id="jobs").one("tr", data_job_id="a")
    fragment = _row(client, "/ui/jobs/a/row")
    row = fragment.one("tr", data_job_id="a")
    assert [c.tag for c in fragment.children if not isinstance(c, str)] == ["tr"]  # only a row
    assert row["data-row-url"] == "/ui/jobs/a/row" == table_row["data-row-url"]
    assert row.text() == table_row.text()
    assert row.one("td", class_="state").text() == "scheduled"
    assert row.one("td", class_="last-outcome").text() == "never ran"


def test_the_row_follows_the_job_state_and_its_last_run(client: FlaskClient) -> None:
    add_job(client, {**JOB, "func": "jobs.examples:fail", "args": ["no"]})
    sign_in(client, "viewer")
    assert client.post("/scheduler/jobs/a/pause", headers=ADMIN).status_code == 200
    response = client.post("/scheduler/jobs/a/run?wait=20", headers=OPERATOR)
    assert response.get_json()["state"] == "failed"
    row = _row(client, "/ui/jobs/a/row").one("tr", data_job_id="a")
    assert row.one("td", class_="state").text() == "paused"
    assert row.one("td", class_="last-outcome").text().startswith("failed ")


def test_a_viewer_gets_no_buttons_in_the_row(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "viewer")
    row = _row(client, "/ui/jobs/a/row")
    assert row.all("button") == [] and row.all("td", class_="actions") == []


def test_an_operator_gets_buttons_that_come_back_to_the_page(client: FlaskClient) -> None:
    add_job(client, JOB)
    client.post("/scheduler/jobs/a/pause", headers=ADMIN)
    sign_in(client, "operator")
    row = _row(client, "/ui/jobs/a/row?next=/ui/jobs%3Fpage%3D2")
    assert [b["data-action"] for b in row.all("button")] == ["run", "resume"]
    assert {i["value"] for i in row.all("input", name="next")} == {"/ui/jobs?page=2"}
    elsewhere = _row(client, "/ui/jobs/a/row?next=https://evil.example/")
    assert {i["value"] for i in elsewhere.all("input", name="next")} == {"/ui/jobs"}


def test_an_unknown_job_has_no_row_and_a_stranger_none_either(client: FlaskClient) -> None:
    assert client.get("/ui/jobs/a/row").status_code == 303  # to sign in
    sign_in(client, "viewer")
    _row(client, "/ui/jobs/nope/row", status=404)


def test_the_jobs_table_is_wired_for_live_rows(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "viewer")
    jobs = page(client, "/ui/jobs")
    assert jobs.one("table", id="jobs")["data-events-url"] == "/scheduler/events"
    assert "hidden" in jobs.one("p", id="jobs-changed").attrs
