"""Browser fixtures: Debian's Chromium driven by Playwright, a real server, one page per test.

The browser is ``/usr/bin/chromium`` (``scripts/browser.sh`` installs it), never a browser that
Playwright downloads. Without it, or without the ``playwright`` package, these tests skip; under
``REQUIRE_SERVICES=1`` (CI) they fail instead, so CI cannot pass by skipping. A failing test
leaves a screenshot and the page's HTML in ``test-artifacts/ui/``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, USERS, unavailable
from tests.support.credentials import PASSWORD_HASHES
from tests.support.server import ADMIN_PASSWORD, ADMIN_USER, REPO_ROOT, Server, servers

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item (``rep_setup``, ``rep_call``) for the page fixture."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    """Debian's headless Chromium, one for the session."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: run `bash scripts/browser.sh` (as root)")
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real `scheduler-service run` per module, with an admin, an operator and a viewer.

    The tests share it and give their jobs ids of their own. The dashboard is another branch's
    work (scheduler_service/ui): until it is in this tree there is no page to test.
    """
    if importlib.util.find_spec("scheduler_service.ui") is None:
        pytest.skip("the dashboard (scheduler_service/ui) is not in this tree")
    folder = tmp_path_factory.mktemp("ui-server")
    users = [
        {"name": name, "role": role, "password_hash": PASSWORD_HASHES[role]}
        for role, (name, _) in USERS.items()
        if role != "admin"
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(
        SCHEDULER_INSTANCE_PATH=str(folder / "instance"),
        SCHEDULER_ADMIN_USER=ADMIN_USER,
        SCHEDULER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        SCHEDULER_USERS=json.dumps(users),
        SCHEDULER_ALLOWED_MODULES=json.dumps(["jobs", "tests.app_jobs"]),
        SCHEDULER_JOB_FILE_ROOTS=json.dumps([str(folder)]),
        PYTHONUNBUFFERED="1",
    )
    starting = servers(env, folder, prefix="ui")
    start = next(starting)
    yield start()
    starting.close()  # kills it


def _artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")


@pytest.fixture
def page(browser: Any, ui_server: Server, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh context (no cookies) and page on the server; on failure a screenshot and HTML."""
    context = browser.new_context(base_url=ui_server.base, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = _artifact_name(request.node.nodeid)
        try:
            tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            (ARTIFACTS / f"{name}.html").write_text(tab.content())
        except Exception as error:  # the page may be gone: say so, keep the test's own failure
            print(f"no screenshot of {name}: {error}")
    context.close()
