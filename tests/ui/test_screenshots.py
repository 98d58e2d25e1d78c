"""The README's screenshots of the dashboard, taken in the real browser.

    UPDATE_SCREENSHOTS=1 pytest tests/ui/test_screenshots.py

writes docs/screenshots/jobs.png, job.png (with its duration plot and fires), form.png and
overview.png. Without UPDATE_SCREENSHOTS the test still walks the four pages (so a broken page
fails here too) but writes nothing: CI leaves the tree clean.
"""

from __future__ import annotations

import os

import pytest

from tests.support.browser import RUN_TIMEOUT_MS, add_job, login_as, require_playwright, run_now
from tests.support.server import REPO_ROOT, Server
from tests.support.waiting import wait_for

require_playwright()
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.slow


SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
# A handful of jobs that show what the table can say: triggers in words, paused, failing.
EXAMPLES = [
    {"id": "nightly-report", "name": "Nightly report", "func": "jobs.examples:print_test",
     "kwargs": {"name": "report"}, "trigger": "cron", "hour": 2, "minute": 30,
     "day_of_week": "mon-fri",
     "timezone": "Europe/Paris"},
    {"id": "hello", "name": "Say hello", "func": "jobs.examples:print_test",
     "kwargs": {"name": "world"}, "trigger": "interval", "minutes": 5},
    {"id": "nap", "name": "A short nap", "func": "jobs.examples:sleep",
     "kwargs": {"seconds": 1}, "trigger": "interval", "seconds": 4},
    {"id": "always-fails", "name": "Always fails", "func": "jobs.examples:fail",
     "kwargs": {"message": "the upstream API said 503"}, "trigger": "interval", "hours": 6},
    {"id": "on-hold", "name": "Paused report", "func": "jobs.examples:print_test",
     "kwargs": {"name": "report"}, "trigger": "interval", "hours": 24},
]  # fmt: skip


def _shoot(page: Page, name: str) -> None:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_readme_screenshots(page: Page, ui_server: Server) -> None:
    for job in EXAMPLES:
        fields = {k: v for k, v in job.items() if k not in ("id", "func")}
        add_job(ui_server, job["id"], job["func"], **fields)
    assert ui_server.request("POST", "/scheduler/jobs/on-hold/pause").status == 200
    for job_id in ("nap", "always-fails"):
        run_now(ui_server, job_id)
    login_as(page, "admin")

    page.goto("/ui/jobs")
    expect(page.locator('table#jobs tbody tr[data-job-id="on-hold"] td.state')).to_have_text(
        "paused"
    )
    _shoot(page, "jobs")

    # A few fires of nap's own (every 4 s) for the plot and the ledger.
    wait_for(
        lambda: len(ui_server.request("GET", "/scheduler/jobs/nap/fires").json()) >= 3,
        timeout=RUN_TIMEOUT_MS / 1000,
        what="three fires of nap",
    )
    page.goto("/ui/jobs/nap")
    expect(page.locator("table#fires tbody tr[data-fire-time]").nth(2)).to_be_attached()
    expect(page.locator("svg#durations g.point").nth(2)).to_be_attached()
    expect(page.locator('table#runs tr[data-run-id][data-state="succeeded"]').first).to_be_visible(
        timeout=RUN_TIMEOUT_MS
    )
    _shoot(page, "job")

    page.goto("/ui/jobs/new")
    page.locator("form#job-form select[name=func]").select_option("jobs.examples:sleep")
    expect(page.locator('form#job-form [name="kwargs.seconds"]')).to_be_visible()
    _shoot(page, "form")

    page.goto("/ui/overview")
    failing = page.locator('table#failing tbody tr[data-job-id="always-fails"]')
    expect(failing).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("svg#runs-per-hour g[data-total='0']").first).to_be_attached()
    _shoot(page, "overview")
