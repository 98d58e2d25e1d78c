"""The dashboard in a real browser: sign in, the job form, live runs, tracebacks, roles.

Written against the pages' contract (selectors in BROWSER-STATUS.md): Debian's Chromium drives
a real `scheduler-service run` (tests/ui/conftest.py). Jobs the test does not create through
the page are added with the REST API as the admin; each test uses ids of its own.
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.support.browser import (
    RUN_TIMEOUT_MS,
    USERS,
    add_job,
    login,
    login_as,
    require_playwright,
    run_now,
)
from tests.support.server import Server

require_playwright()
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.slow


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def mark_document(page: Page) -> None:
    """Tag the loaded document; ``assert_not_reloaded`` then proves no navigation happened."""
    page.evaluate("window.__uiTestMark = 'unchanged'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__uiTestMark") == "unchanged", "the page was reloaded"


def test_login_with_a_wrong_then_the_right_password(page: Page) -> None:
    user, password = USERS["admin"]
    login(page, user, password + "-wrong")
    expect(page.locator("[role=alert]")).to_be_visible()
    expect(page.locator("#whoami")).to_have_count(0)

    login(page, user, password)
    expect(page).to_have_url(re.compile(r"/ui/jobs$"))
    expect(page.locator("#whoami")).to_contain_text(user)
    expect(page.locator("a#nav-jobs")).to_be_visible()

    page.locator("form#logout button").click()
    page.goto("/ui/jobs")
    expect(page.locator("form#login")).to_be_visible()
    expect(page.locator("#whoami")).to_have_count(0)


def test_login_goes_to_next(page: Page) -> None:
    user, password = USERS["viewer"]
    page.goto("/ui/login?next=%2Fui%2Fjobs%3Fpaused%3Dtrue")
    form = page.locator("form#login")
    form.locator("input[name=username]").fill(user)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/ui/jobs\?paused=true$"))


def test_create_a_job_from_the_form(page: Page, ui_server: Server) -> None:
    job_id = new_id("form")
    login_as(page, "admin")
    page.goto("/ui/jobs")
    page.locator("a#new-job").click()
    expect(page).to_have_url(re.compile(r"/ui/jobs/new"))
    # Picking a function renders its parameters (maybe after a GET with ?func=): pick it first.
    page.locator("form#job-form select[name=func]").select_option("jobs.examples:sleep")
    seconds = page.locator('form#job-form [name="kwargs.seconds"]')
    expect(seconds).to_be_visible()
    form = page.locator("form#job-form")
    form.locator("select[name=trigger]").select_option("interval")
    form.locator("input[name=id]").fill(job_id)
    form.locator("input[name=name]").fill("Nap from the form")
    form.locator("input[name=hours]").fill("1")
    seconds.fill("100000")  # jobs.examples.Seconds allows at most 86400
    form.locator("button[type=submit]").click()

    expect(page.locator('[data-error-for="kwargs.seconds"]')).to_be_visible()
    expect(page.locator('[data-error-for="kwargs.seconds"]')).not_to_have_text("")
    expect(page.locator("[role=alert]").first).to_be_visible()
    assert ui_server.request("GET", f"/scheduler/jobs/{job_id}").status == 404
    # What was typed is kept: fix the one field.
    expect(page.locator("form#job-form input[name=id]")).to_have_value(job_id)

    page.locator('form#job-form [name="kwargs.seconds"]').fill("1")
    page.locator("form#job-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"/ui/jobs/{job_id}$"))
    expect(page.locator("#job-definition")).to_contain_text("jobs.examples:sleep")
    expect(page.locator("ol#next-fires li").first).to_be_visible()
    created = ui_server.request("GET", f"/scheduler/jobs/{job_id}").json()
    assert created["func"] == "jobs.examples:sleep"
    assert created["kwargs"] == {"seconds": 1}

    page.locator("a#nav-jobs").click()
    row = page.locator(f'table#jobs tbody tr[data-job-id="{job_id}"]')
    expect(row.locator("td.name")).to_have_text("Nap from the form")
    expect(row.locator("td.state")).to_have_text(re.compile("scheduled"))
    expect(row.locator(f'td.id a[href="/ui/jobs/{job_id}"]')).to_be_visible()
    expect(row.locator("td.trigger")).not_to_have_text("")
    expect(page.locator("#jobs-total")).to_contain_text(re.compile(r"\d"))


def test_a_run_appears_live_and_succeeds(page: Page, ui_server: Server) -> None:
    job_id = new_id("live")
    add_job(ui_server, job_id, "jobs.examples:sleep", kwargs={"seconds": 2})
    login_as(page, "operator")
    page.goto(f"/ui/jobs/{job_id}")
    runs = page.locator("table#runs tbody tr[data-run-id]")
    expect(runs).to_have_count(0)
    mark_document(page)

    run_now(ui_server, job_id)  # from outside the page: only the live stream can show it
    expect(runs).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    run_id = runs.first.get_attribute("data-run-id")
    finished = page.locator(f'table#runs tr[data-run-id="{run_id}"][data-state="succeeded"]')
    expect(finished).to_be_visible(timeout=RUN_TIMEOUT_MS)
    assert_not_reloaded(page)


def test_the_run_button_runs_the_job(page: Page, ui_server: Server) -> None:
    job_id = new_id("button")
    add_job(ui_server, job_id, "jobs.examples:print_test", kwargs={"name": "from the button"})
    login_as(page, "operator")
    page.goto(f"/ui/jobs/{job_id}")
    expect(page.locator("table#runs tbody tr[data-run-id]")).to_have_count(0)
    page.locator('button[data-action="run"]').click()
    succeeded = page.locator('table#runs tbody tr[data-run-id][data-state="succeeded"]')
    expect(succeeded).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    runs = ui_server.request("GET", f"/scheduler/jobs/{job_id}/runs").json()
    assert [run["state"] for run in runs] == ["succeeded"]


def test_a_failing_job_shows_its_traceback(page: Page, ui_server: Server) -> None:
    job_id = new_id("fails")
    message = f"boom {uuid.uuid4().hex[:6]}"
    add_job(ui_server, job_id, "jobs.examples:fail", kwargs={"message": message})
    run_now(ui_server, job_id)
    login_as(page, "viewer")
    page.goto(f"/ui/jobs/{job_id}")
    failed = page.locator('table#runs tbody tr[data-run-id][data-state="failed"]')
    expect(failed).to_have_count(1, timeout=RUN_TIMEOUT_MS)

    traceback = page.locator("details pre.traceback").first
    if not traceback.is_visible():  # closed details: open it as a user would
        page.locator("details:has(pre.traceback) > summary").first.click()
    expect(traceback).to_be_visible()
    # The stored traceback is the frames down to the raise; the error itself is in the row.
    expect(traceback).to_contain_text("in fail")
    expect(traceback).to_contain_text("raise RuntimeError(message)")
    expect(failed).to_contain_text(message)


def test_pause_and_resume_from_the_jobs_table(page: Page, ui_server: Server) -> None:
    job_id = new_id("pause")
    add_job(ui_server, job_id, "jobs.examples:print_test", kwargs={"name": "paused twice"})
    login_as(page, "operator")
    page.goto("/ui/jobs")
    row = page.locator(f'table#jobs tbody tr[data-job-id="{job_id}"]')
    expect(row.locator("td.state")).to_have_text(re.compile("scheduled"))
    expect(row.locator('button[data-action="resume"]')).to_have_count(0)

    row.locator('button[data-action="pause"]').click()
    expect(row.locator("td.state")).to_have_text(re.compile("paused"))
    assert ui_server.request("GET", f"/scheduler/jobs/{job_id}").json()["next_run_time"] is None
    page.goto("/ui/jobs?paused=true")
    expect(row).to_be_visible()  # the filter at the store finds it

    page.goto("/ui/jobs")
    row.locator('button[data-action="resume"]').click()
    expect(row.locator("td.state")).to_have_text(re.compile("scheduled"))
    assert ui_server.request("GET", f"/scheduler/jobs/{job_id}").json()["next_run_time"]
    page.goto("/ui/jobs?paused=true")
    expect(page.locator("table#jobs")).to_be_visible()
    expect(row).to_have_count(0)


def test_pause_and_resume_on_the_job_page(page: Page, ui_server: Server) -> None:
    job_id = new_id("pause-page")
    add_job(ui_server, job_id, "jobs.examples:print_test", kwargs={"name": "paused here"})
    login_as(page, "admin")
    page.goto(f"/ui/jobs/{job_id}")
    page.locator('button[data-action="pause"]').click()
    expect(page.locator('button[data-action="resume"]')).to_be_visible()
    assert ui_server.request("GET", f"/scheduler/jobs/{job_id}").json()["next_run_time"] is None
    page.locator('button[data-action="resume"]').click()
    expect(page.locator('button[data-action="pause"]')).to_be_visible()
    assert ui_server.request("GET", f"/scheduler/jobs/{job_id}").json()["next_run_time"]


# What each role is offered: (run/pause buttons, a#new-job, a#edit-job).
OFFERED = {"viewer": (False, False, False), "operator": (True, False, False)}
OFFERED["admin"] = (True, True, True)


@pytest.mark.parametrize("role", list(OFFERED))
def test_each_role_is_offered_only_what_it_may_do(page: Page, ui_server: Server, role: str) -> None:
    job_id = new_id(f"offer-{role}")
    add_job(ui_server, job_id, "jobs.examples:print_test", kwargs={"name": role})
    actions, new_job, edit_job = OFFERED[role]
    login_as(page, role)

    page.goto("/ui/jobs")
    row = page.locator(f'table#jobs tbody tr[data-job-id="{job_id}"]')
    expect(row).to_be_visible()
    buttons = page.locator("button[data-action]")
    if actions:
        expect(row.locator('button[data-action="run"]')).to_be_visible()
        expect(row.locator('button[data-action="pause"]')).to_be_visible()
    else:
        expect(buttons).to_have_count(0)
    expect(page.locator("a#new-job")).to_have_count(1 if new_job else 0)

    page.goto(f"/ui/jobs/{job_id}")
    expect(page.locator("#job-definition")).to_be_visible()
    if actions:
        expect(page.locator('button[data-action="run"]')).to_be_visible()
    else:
        expect(buttons).to_have_count(0)
    expect(page.locator("a#edit-job")).to_have_count(1 if edit_job else 0)


def test_the_overview_shows_a_failing_job_live(page: Page, ui_server: Server) -> None:
    job_id = new_id("overview-fails")
    message = f"overview boom {uuid.uuid4().hex[:6]}"
    add_job(ui_server, job_id, "jobs.examples:fail", kwargs={"message": message})
    login_as(page, "viewer")
    page.locator("a#nav-overview").click()
    expect(page).to_have_url(re.compile(r"/ui/overview$"))
    expect(page.locator("svg#runs-per-hour")).to_be_visible()
    expect(page.locator("svg#lateness")).to_be_visible()
    expect(page.locator("#live-status")).to_contain_text("Live", timeout=RUN_TIMEOUT_MS)
    mark_document(page)

    run_now(ui_server, job_id)  # from outside the page: only the live refresh can show it
    failing = page.locator(f'table#failing tbody tr[data-job-id="{job_id}"]')
    expect(failing).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(failing.locator("td.error")).to_contain_text(message)
    expect(page.locator("table#failing tbody tr[data-job-id]").first).to_have_attribute(
        "data-job-id", job_id
    )
    assert_not_reloaded(page)
    failing.locator("a").click()
    expect(page).to_have_url(re.compile(rf"/ui/jobs/{job_id}$"))
