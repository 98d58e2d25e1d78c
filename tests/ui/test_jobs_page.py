"""The jobs table: paging at the store, the paused filter, role-gated buttons, actions."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import JOB, add_job, get_job
from tests.support.credentials import ADMIN
from tests.ui.page import page, sign_in


def _ids(client: FlaskClient, url: str) -> list[str]:
    return [
        row["data-job-id"]
        for row in page(client, url).one("table", id="jobs").all("tr", data_job_id=True)
    ]


def test_the_table_pages_as_the_api_does(client: FlaskClient) -> None:
    for n in range(120):
        add_job(client, {**JOB, "id": f"job{n:03d}", "seconds": 30 + n})
    sign_in(client, "viewer")
    second = page(client, "/ui/jobs?page=2")
    assert second.one(id="jobs-total").text() == "120"
    rows = second.one("table", id="jobs").all("tr", data_job_id=True)
    api = client.get("/scheduler/jobs?offset=50&limit=50").get_json()
    assert [row["data-job-id"] for row in rows] == [job["id"] for job in api]
    assert second.one("a", rel="prev")["href"] == "/ui/jobs?page=1"
    assert second.one("a", rel="next")["href"] == "/ui/jobs?page=3"
    first, third = _ids(client, "/ui/jobs"), _ids(client, "/ui/jobs?page=3")
    assert len(first) == 50 and len(third) == 20
    assert sorted(first + [row["data-job-id"] for row in rows] + third) == [
        f"job{n:03d}" for n in range(120)
    ]
    last = page(client, "/ui/jobs?page=3")
    assert last.all("a", rel="next") == []
    assert page(client, "/ui/jobs").all("a", rel="prev") == []


def test_a_row_says_what_the_job_is(client: FlaskClient) -> None:
    add_job(client, {**JOB, "id": "five", "seconds": None, "minutes": 5})
    cron = {
        "id": "night",
        "func": JOB["func"],
        "args": ["x"],
        "trigger": "cron",
        "hour": 2,
        "minute": 30,
    }
    add_job(client, {**cron, "timezone": "Europe/Paris"})
    sign_in(client, "viewer")
    table = page(client, "/ui/jobs").one("table", id="jobs")
    five = table.one("tr", data_job_id="five")
    assert five.one("td", class_="id").one("a")["href"] == "/ui/jobs/five"
    assert five.one("td", class_="trigger").text() == "every 5 minutes"
    assert five.one("td", class_="state").text() == "scheduled"
    assert five.one("td", class_="store").text() == "default"
    assert five.one("td", class_="last-outcome").text() == "never ran"
    assert five.one("td", class_="next-run").text()[:4].isdigit()
    night = table.one("tr", data_job_id="night")
    assert night.one("td", class_="trigger").text() == "every day at 02:30 (Europe/Paris)"


def test_the_paused_filter(client: FlaskClient) -> None:
    for n in range(5):
        add_job(client, {**JOB, "id": f"j{n}"})
    for n in (1, 3):
        assert client.post(f"/scheduler/jobs/j{n}/pause", headers=ADMIN).status_code == 200
    sign_in(client, "viewer")
    paused = page(client, "/ui/jobs?paused=true")
    assert paused.one(id="jobs-total").text() == "2"
    rows = paused.one("table", id="jobs").all("tr", data_job_id=True)
    assert [r["data-job-id"] for r in rows] == ["j1", "j3"]
    assert {r.one("td", class_="state").text() for r in rows} == {"paused"}
    assert {r.one("td", class_="next-run").text() for r in rows} == {"paused"}
    assert _ids(client, "/ui/jobs?paused=false") == ["j0", "j2", "j4"]


def test_a_viewer_sees_no_buttons(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "viewer")
    jobs = page(client, "/ui/jobs")
    assert jobs.all("button", data_action=True) == []
    assert jobs.all("a", id="new-job") == []
    job = page(client, f"/ui/jobs/{JOB['id']}")
    assert job.all("button", data_action=True) == []
    assert job.all("a", id="edit-job") == []


def test_an_operator_sees_run_pause_resume_and_an_admin_also_new_and_edit(app: Flask) -> None:
    client = app.test_client()
    add_job(client, JOB)
    add_job(client, {**JOB, "id": "p"})
    client.post("/scheduler/jobs/p/pause", headers=ADMIN)
    sign_in(client, "operator")
    table = page(client, "/ui/jobs").one("table", id="jobs")
    scheduled, paused = table.one("tr", data_job_id="a"), table.one("tr", data_job_id="p")
    assert [b["data-action"] for b in scheduled.all("button", data_action=True)] == ["run", "pause"]
    assert [b["data-action"] for b in paused.all("button", data_action=True)] == ["run", "resume"]
    form = scheduled.one("button", data_action="pause").parent
    assert form is not None and form["action"] == "/ui/jobs/a/pause" and form["method"] == "post"
    assert page(client, "/ui/jobs").all("a", id="new-job") == []
    assert page(client, "/ui/jobs/a").all("a", id="edit-job") == []
    assert client.get("/ui/jobs/new").status_code == 403
    admin = app.test_client()
    sign_in(admin, "admin")
    assert page(admin, "/ui/jobs").one("a", id="new-job")["href"] == "/ui/jobs/new"
    assert page(admin, "/ui/jobs/a").one("a", id="edit-job")["href"] == "/ui/jobs/a/edit"


def test_pause_and_resume_buttons(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "operator")
    response = client.post("/ui/jobs/a/pause", data={"next": "/ui/jobs?page=1"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/jobs?page=1"
    assert get_job(client, "a")["next_run_time"] is None
    assert "a paused" in page(client, "/ui/jobs").one(role="status").text()
    response = client.post("/ui/jobs/a/resume", data={"next": "https://evil.example/"})
    assert response.headers["Location"] == "/ui/jobs/a"
    assert get_job(client, "a")["next_run_time"] is not None


def test_a_viewer_cannot_post_an_action(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "viewer")
    assert client.post("/ui/jobs/a/pause").status_code == 403
    assert get_job(client, "a")["next_run_time"] is not None


def test_a_cross_site_post_is_refused(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "operator")
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        response = client.post("/ui/jobs/a/pause", headers=headers)
        assert response.status_code == 403
        assert "cross-site" in response.get_data(as_text=True)
    assert get_job(client, "a")["next_run_time"] is not None
    # The same request from the page itself goes through.
    response = client.post(
        "/ui/jobs/a/pause", headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}
    )
    assert response.status_code == 303
    assert get_job(client, "a")["next_run_time"] is None


def test_a_cross_site_sign_in_is_refused(client: FlaskClient) -> None:
    response = client.post(
        "/ui/login",
        data={"username": "admin", "password": "admin-pass-1"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "query", ["page=abc", "page=0", "page=-1", "page=99999999999999999999", "paused=maybe"]
)
def test_a_bad_page_or_filter_is_a_400_page(client: FlaskClient, query: str) -> None:
    add_job(client, JOB)
    sign_in(client, "viewer")
    response = client.get(f"/ui/jobs?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert query.split("=")[0] in response.get_data(as_text=True)


def test_an_unknown_jobs_fragments_and_form_are_404(client: FlaskClient) -> None:
    sign_in(client, "admin")
    assert client.get("/ui/jobs/nope/runs").status_code == 404
    assert client.get("/ui/jobs/nope/row").status_code == 404
    saved = client.post(
        "/ui/jobs/nope/edit",
        data={"func": "jobs.examples:print_test", "trigger": "interval", "seconds": "5"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert saved.status_code == 404
    assert client.get("/scheduler/jobs/nope").status_code == 404
