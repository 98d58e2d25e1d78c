"""The dashboard in a real browser, part two: live rows of the jobs table, the keyboard, the
pages of the table and the edit form. Same fixtures and rules as test_browser.py."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.support.browser import (
    RUN_TIMEOUT_MS,
    add_job,
    login_as,
    require_playwright,
    run_now,
)
from tests.support.server import Server

require_playwright()
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.slow

PAGE_SIZE = 50  # scheduler_service/ui/jobs.py


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_tab_from_the_top_to_the_first_run_button_and_press_enter(
    page: Page, ui_server: Server
) -> None:
    add_job(ui_server, new_id("keys"), "jobs.examples:print_test", kwargs={"name": "keyboard"})
    login_as(page, "operator")
    page.goto("/ui/jobs")
    first = page.locator("table#jobs tbody tr[data-job-id]").first
    job_id = first.get_attribute("data-job-id")
    assert job_id
    button = first.locator('button[data-action="run"]')

    page.keyboard.press("Tab")
    expect(page.locator("a#skip")).to_be_focused()  # the first stop, and then visible
    expect(page.locator("a#skip")).to_be_in_viewport()
    for _ in range(40):  # the header's links, the filter, the first row's link, then the button
        if button.evaluate("b => b === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(button).to_be_focused()
    outline = button.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline != "none", "a focused button shows where the focus is"

    page.keyboard.press("Enter")
    expect(page.locator("p.flash[role=status]")).to_contain_text(f"of {job_id} requested")
    row = page.locator(f'table#jobs tbody tr[data-job-id="{job_id}"]')
    expect(row.locator("td.last-outcome")).to_contain_text("succeeded", timeout=RUN_TIMEOUT_MS)
    runs = ui_server.request("GET", f"/scheduler/jobs/{job_id}/runs").json()
    assert [run["trigger"] for run in runs] == ["manual"]


def test_the_skip_link_moves_to_the_content(page: Page) -> None:
    login_as(page, "viewer")
    page.goto("/ui/jobs")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    expect(page).to_have_url(re.compile(r"#content$"))


def test_rows_follow_runs_and_removals_without_a_reload(page: Page, ui_server: Server) -> None:
    job_id = new_id("live-row")
    add_job(ui_server, job_id, "jobs.examples:fail", kwargs={"message": "live row"})
    login_as(page, "viewer")
    page.goto("/ui/jobs?paused=false")
    row = page.locator(f'table#jobs tbody tr[data-job-id="{job_id}"]')
    expect(row.locator("td.last-outcome")).to_have_text("never ran")
    page.evaluate("window.__uiTestMark = 'unchanged'")

    run_now(ui_server, job_id)  # from outside the page: only the stream can show it
    expect(row.locator("td.last-outcome")).to_contain_text("failed", timeout=RUN_TIMEOUT_MS)
    assert ui_server.request("POST", f"/scheduler/jobs/{job_id}/pause").status == 200
    expect(row.locator("td.state")).to_have_text("paused")
    expect(page.locator("#jobs-changed")).to_be_hidden()

    assert ui_server.request("DELETE", f"/scheduler/jobs/{job_id}").status in (200, 204)
    expect(row.locator("td.state")).to_have_text("removed")
    expect(page.locator("#jobs-changed")).to_be_visible()
    assert page.evaluate("window.__uiTestMark") == "unchanged", "the page was reloaded"


def test_the_pages_of_the_jobs_table(page: Page, ui_server: Server) -> None:
    prefix = new_id("many")
    for number in range(60):
        add_job(ui_server, f"{prefix}-{number:02d}", "jobs.examples:print_test", args=["x"])
    login_as(page, "viewer")
    page.goto("/ui/jobs")
    total = int(page.locator("#jobs-total").inner_text())
    assert total >= 60
    rows = page.locator("table#jobs tbody tr[data-job-id]")
    expect(rows).to_have_count(PAGE_SIZE)
    expect(page.locator("a[rel=prev]")).to_have_count(0)
    seen = set(rows.evaluate_all("rs => rs.map(r => r.dataset.jobId)"))

    pages = 1
    while page.locator("a[rel=next]").count():
        page.locator("a[rel=next]").click()
        pages += 1
        expect(page).to_have_url(re.compile(rf"page={pages}$"))
        expect(page.locator("a[rel=prev]")).to_be_visible()
        ids = rows.evaluate_all("rs => rs.map(r => r.dataset.jobId)")
        assert not seen & set(ids), "a job on two pages"
        seen |= set(ids)
    assert pages == -(-total // PAGE_SIZE)
    assert len(seen) == total
    assert {f"{prefix}-{n:02d}" for n in range(60)} <= seen
    expect(rows).to_have_count(total - (pages - 1) * PAGE_SIZE)

    page.locator("a[rel=prev]").click()
    expect(page).to_have_url(re.compile(rf"page={pages - 1}$"))
    expect(rows).to_have_count(PAGE_SIZE)


def test_edit_the_interval_and_see_it_on_the_job_page(page: Page, ui_server: Server) -> None:
    job_id = new_id("edit")
    add_job(ui_server, job_id, "jobs.examples:print_test", kwargs={"name": "edited"})
    login_as(page, "admin")
    page.goto(f"/ui/jobs/{job_id}")
    expect(page.locator("#job-definition dd.trigger")).to_have_text("every hour")
    page.locator("a#edit-job").click()
    expect(page).to_have_url(re.compile(rf"/ui/jobs/{job_id}/edit$"))
    form = page.locator("form#job-form")
    expect(form.locator("input[name=hours]")).to_have_value("1")
    form.locator("input[name=hours]").fill("")
    form.locator("input[name=minutes]").fill("20")
    form.locator("button[type=submit]").click()

    expect(page).to_have_url(re.compile(rf"/ui/jobs/{job_id}$"))
    expect(page.locator("#job-definition dd.trigger")).to_have_text("every 20 minutes")
    saved = ui_server.request("GET", f"/scheduler/jobs/{job_id}").json()
    assert saved["kwargs"] == {"name": "edited"}
    assert saved["trigger"] == "interval"
    assert (saved.get("minutes"), saved.get("hours")) == (20, None)
