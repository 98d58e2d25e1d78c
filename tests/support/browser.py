"""Driving the dashboard in a browser: Chromium's path and flags, the test users, signing in."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.credentials import PASSWORDS
from tests.support.server import ADMIN_PASSWORD, ADMIN_USER, Server

if TYPE_CHECKING:  # playwright is imported when used: without it the browser tests skip
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: two shared cores run the server, its scheduler and the browser.
TIMEOUT_MS = 20_000
# A run goes from due to finished through the scheduler loop and the run writer; SSE carries it.
RUN_TIMEOUT_MS = 45_000
# Who signs in, by role: (user name, password). The admin is the server's bootstrap admin.
USERS = {
    "admin": (ADMIN_USER, ADMIN_PASSWORD),
    "operator": ("operator", PASSWORDS["operator"]),
    "viewer": ("viewer", PASSWORDS["viewer"]),
}


def unavailable(reason: str) -> None:
    """Skip (the whole module when called at import), or fail under REQUIRE_SERVICES=1."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason, allow_module_level=True)


def require_playwright() -> None:
    """Call before importing playwright in a test module: `make test` collects it without."""
    if importlib.util.find_spec("playwright") is None:
        unavailable("playwright is not installed: pip install -e '.[dev]'")


def login(page: Page, user: str, password: str) -> None:
    """Fill and submit ``form#login`` at /ui/login (no check of the outcome)."""
    page.goto("/ui/login")
    form = page.locator("form#login")
    form.locator("input[name=username]").fill(user)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()


def login_as(page: Page, role: str) -> None:
    """Sign in as the test user of ``role``; wait until the header names them."""
    from playwright.sync_api import expect

    user, password = USERS[role]
    login(page, user, password)
    expect(page.locator("#whoami")).to_contain_text(user)


def add_job(server: Server, job_id: str, func: str, **fields: Any) -> dict:
    """Add a job through the REST API as the admin (hourly unless ``fields`` give a trigger)."""
    trigger = {} if "trigger" in fields else {"trigger": "interval", "hours": 1}
    body = {"id": job_id, "func": func, **trigger, **fields}
    answer = server.request("POST", "/scheduler/jobs", body)
    assert answer.status == 200, answer.body
    return answer.json()


def run_now(server: Server, job_id: str) -> None:
    """Run the job now through the REST API, as the admin."""
    answer = server.request("POST", f"/scheduler/jobs/{job_id}/run")
    assert answer.status in (200, 201, 202), answer.body
