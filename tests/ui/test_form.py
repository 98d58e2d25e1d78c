"""Creating and editing a job with the form: the API's validator, errors at their fields."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import JOB, add_job, get_job
from tests.support.credentials import ADMIN
from tests.ui.page import page, parse, sign_in

PRINT = "jobs.examples:print_test"


def _post(client: FlaskClient, url: str, **fields: str):
    return client.post(url, data={"fields_for": fields.get("func", PRINT), **fields})


def test_the_form_lists_the_task_catalog_and_its_parameters(client: FlaskClient) -> None:
    sign_in(client, "admin")
    form = page(client, f"/ui/jobs/new?func={PRINT}").one("form", id="job-form")
    catalog = [task["func"] for task in client.get("/scheduler/tasks").get_json()]
    options = form.one("select", name="func").all("option")
    assert [o["value"] for o in options] == catalog
    assert [o["value"] for o in options if "selected" in o.attrs] == [PRINT]
    field = form.one("input", name="kwargs.name")
    label = form.one("label", **{"for": field["id"]})
    assert label.text().startswith("name")
    for name in ("id", "name", "seconds", "minutes", "hours", "crontab", "run_date", "timezone"):
        form.one("input", name=name)
    assert [o["value"] for o in form.one("select", name="trigger").all("option")] == [
        "interval",
        "cron",
        "date",
    ]
    other = page(client, "/ui/jobs/new?func=jobs.examples:sleep").one("form", id="job-form")
    assert other.one("input", name="kwargs.seconds")
    assert other.all("input", name="kwargs.name") == []


def test_a_validation_error_is_shown_at_its_field_and_nothing_is_made(client: FlaskClient) -> None:
    sign_in(client, "admin")
    response = _post(
        client,
        "/ui/jobs/new",
        id="j",
        func=PRINT,
        **{"kwargs.name": "x" * 300},
        trigger="interval",
        seconds="10",
    )
    assert response.status_code in (400, 422)
    html = parse(response.get_data(as_text=True))
    assert html.one("span", data_error_for="kwargs.name").text()
    assert html.one("span", data_error_for="id").text() == ""
    assert "kwargs.name" in html.one("div", role="alert").text()
    assert html.one("input", name="kwargs.name")["value"] == "x" * 300  # kept as typed
    assert client.get("/scheduler/jobs/j").status_code == 404


def test_an_impossible_trigger_is_shown_at_its_field(client: FlaskClient) -> None:
    sign_in(client, "admin")
    response = _post(
        client,
        "/ui/jobs/new",
        id="c",
        func=PRINT,
        **{"kwargs.name": "x"},
        trigger="cron",
        crontab="not a crontab",
    )
    assert response.status_code in (400, 422)
    html = parse(response.get_data(as_text=True))
    errors = {e["data-error-for"]: e.text() for e in html.all(data_error_for=True) if e.text()}
    assert errors, response.get_data(as_text=True)
    assert client.get("/scheduler/jobs/c").status_code == 404


def test_a_job_is_created(client: FlaskClient) -> None:
    sign_in(client, "admin")
    response = _post(
        client,
        "/ui/jobs/new",
        id="made",
        name="Made here",
        func=PRINT,
        **{"kwargs.name": "linda"},
        trigger="interval",
        minutes="5",
        timezone="Europe/Paris",
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == "/ui/jobs/made"
    job = get_job(client, "made")
    assert job["name"] == "Made here"
    assert job["kwargs"] == {"name": "linda"}
    assert (job["trigger"], job["minutes"], job["timezone"]) == ("interval", 5, "Europe/Paris")


def test_a_taken_id_is_shown_at_the_id(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "admin")
    response = _post(
        client,
        "/ui/jobs/new",
        id="a",
        func=PRINT,
        **{"kwargs.name": "x"},
        trigger="interval",
        seconds="5",
    )
    assert response.status_code == 409
    assert (
        "already exists"
        in parse(response.get_data(as_text=True)).one("span", data_error_for="id").text()
    )


def test_another_function_chosen_without_script_shows_its_fields_first(client: FlaskClient) -> None:
    sign_in(client, "admin")
    response = client.post(
        "/ui/jobs/new",
        data={
            "id": "s",
            "func": "jobs.examples:sleep",
            "fields_for": PRINT,
            "trigger": "interval",
            "seconds": "5",
        },
    )
    assert response.status_code == 200
    assert parse(response.get_data(as_text=True)).one("input", name="kwargs.seconds")
    assert client.get("/scheduler/jobs/s").status_code == 404


def test_a_job_is_edited_through_the_patch(client: FlaskClient) -> None:
    add_job(client, JOB)  # print_test("x") every 30 s, its argument given by position
    sign_in(client, "admin")
    form = page(client, "/ui/jobs/a/edit").one("form", id="job-form")
    assert "readonly" in form.one("input", name="id").attrs
    assert form.one("input", name="kwargs.name")["value"] == "x"
    assert form.one("input", name="seconds")["value"] == "30"
    response = _post(
        client,
        "/ui/jobs/a/edit",
        id="a",
        func=PRINT,
        **{"kwargs.name": "y"},
        trigger="cron",
        crontab="30 2 * * mon-fri",
        timezone="UTC",
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    job = get_job(client, "a")
    assert (job["args"], job["kwargs"]) == ([], {"name": "y"})
    assert (job["trigger"], job["hour"], job["minute"], job["day_of_week"]) == (
        "cron",
        "2",
        "30",
        "mon-fri",
    )
    assert "seconds" not in job
    bad = _post(
        client,
        "/ui/jobs/a/edit",
        id="a",
        func=PRINT,
        **{"kwargs.name": "z"},
        trigger="interval",
        seconds="-4",
    )
    assert bad.status_code in (400, 422)
    assert parse(bad.get_data(as_text=True)).all(data_error_for=True)
    assert get_job(client, "a")["kwargs"] == {"name": "y"}  # all or nothing


def test_only_an_admin_may_save(client: FlaskClient) -> None:
    add_job(client, JOB)
    sign_in(client, "operator")
    assert (
        _post(
            client, "/ui/jobs/new", id="o", func=PRINT, trigger="interval", seconds="5"
        ).status_code
        == 403
    )
    assert client.get("/scheduler/jobs/o", headers=ADMIN).status_code == 404
