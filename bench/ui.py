"""How fast the dashboard's jobs page pages through 10,000 jobs (issue 17: under 100 ms a page).

    python bench/ui.py [--stores sqlite,memory] [--jobs 10000] [--calls 20] [--size 50]

For each store a real `scheduler-service run` starts with N jobs declared in a generated jobs
file (bench/run.py's server start and preload, upserted at start-up), then each page (first,
middle, last) is fetched --calls times after one untimed warm-up, and p50/p95/max are printed
in ms:
- `GET /scheduler/jobs?limit=50&offset=...`: the JSON API's paging at the store, the floor the
  page is built on;
- `GET /ui/jobs?page=N` (50 a page), signed in through `form#login` with a session cookie, when
  the server has the dashboard (a 401 or 404 at /ui/login: "no dashboard in this build").
Progress goes to stderr, the table to stdout. See bench/README.md.
"""

from __future__ import annotations

import argparse
import html.parser
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_run", HERE / "run.py")
assert _spec is not None and _spec.loader is not None
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)

TARGET_MS = 100.0


class Service(bench_run.Ours):
    """bench/run.py's server, preloaded with the shipped print_test (no kit needed)."""

    def base_env(self) -> dict[str, str]:
        # This tree's code, even when the venv's editable install points at another checkout.
        env = super().base_env()
        env["PYTHONPATH"] = os.pathsep.join([str(bench_run.REPO), env["PYTHONPATH"]])
        return env

    def jobs_file(self, n: int) -> Path:
        path = self.tmp / f"ui-preload-{n}.toml"
        lines = []
        for i in range(n):
            lines += [
                "[[jobs]]",
                f'id = "job{i:05d}"',
                f'name = "Example job {i}"',
                'func = "jobs.examples:print_test"',
                f'kwargs = {{ name = "n{i}" }}',
                'trigger = "interval"',
                f"minutes = {5 + i % 55}",
                "",
            ]
        path.write_text("\n".join(lines))
        return path


class _Hidden(html.parser.HTMLParser):
    """The hidden inputs of a page (a CSRF token of the login form, if it has one)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("type") == "hidden" and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""


def sign_in(session: requests.Session, root: str, auth: tuple[str, str]) -> bool:
    """Sign in through form#login; False when this build has no dashboard."""
    page = session.get(f"{root}/ui/login", timeout=30)
    if page.status_code in (401, 404):  # no public login page: no dashboard in this build
        return False
    page.raise_for_status()
    hidden = _Hidden()
    hidden.feed(page.text)
    form = {**hidden.fields, "username": auth[0], "password": auth[1]}
    answer = session.post(f"{root}/ui/login", data=form, timeout=30, allow_redirects=False)
    if answer.status_code not in (302, 303):
        raise RuntimeError(f"sign-in answered {answer.status_code}: {answer.text[:300]}")
    return True


def timed(session: requests.Session, url: str, calls: int, check: str) -> list[float]:
    """One warm-up, then ``calls`` timed GETs of ``url`` (ms); each must hold ``check``."""
    times = []
    for i in range(calls + 1):
        start = time.perf_counter()
        answer = session.get(url, timeout=60)
        elapsed = (time.perf_counter() - start) * 1000
        answer.raise_for_status()
        if check not in answer.text:
            raise RuntimeError(f"{url}: {check!r} not in the answer: {answer.text[:300]}")
        if i:
            times.append(elapsed)
    return times


def row(store: str, what: str, page: int, times: list[float]) -> str:
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20, method="inclusive")[18]
    worst = max(times)
    verdict = "ok" if p95 < TARGET_MS else "over"
    return f"| {store} | {what} | {page} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {verdict} |"


def bench_store(store: str, cfg: argparse.Namespace, tmp: Path) -> list[str]:
    target = Service(store, tmp, tmp)
    bench_run.log(f"{store}: starting with {cfg.jobs} declared jobs...")
    server = target.start(preload=cfg.jobs)
    rows = []
    try:
        ready = server.wait_ready(target.auth, 600)
        bench_run.log(f"{store}: ready after {ready:.1f} s")
        root = f"http://127.0.0.1:{server.port}"
        last = (cfg.jobs - 1) // cfg.size + 1
        pages = sorted({1, (last + 1) // 2, last})
        with requests.Session() as api:
            api.auth = target.auth
            total = api.get(f"{root}/scheduler/jobs?limit=1", timeout=60)
            assert total.headers["X-Total-Count"] == str(cfg.jobs), total.headers
            for page in pages:
                offset = (page - 1) * cfg.size
                url = f"{root}/scheduler/jobs?limit={cfg.size}&offset={offset}"
                listed = [job["id"] for job in api.get(url, timeout=60).json()]
                assert len(listed) == min(cfg.size, cfg.jobs - offset), (page, len(listed))
                rows.append(row(store, "API", page, timed(api, url, cfg.calls, '"id"')))
        with requests.Session() as browser:
            if not sign_in(browser, root, target.auth):
                rows.append(f"| {store} | /ui/jobs | - | no dashboard in this build | | | |")
                return rows
            for page in pages:
                url = f"{root}/ui/jobs?page={page}"
                rows.append(
                    row(store, "/ui/jobs", page, timed(browser, url, cfg.calls, "data-job-id"))
                )
    finally:
        server.stop()
        target.cleanup()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,memory")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--size", type=int, default=50, help="jobs a page (the dashboard's 50)")
    cfg = parser.parse_args()
    lines = [
        f"{cfg.jobs} jobs, {cfg.size} a page, {cfg.calls} timed GETs a page (ms; target p95 < "
        f"{TARGET_MS:.0f})",
        "",
        "| store | what | page | p50 | p95 | max | |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="ss-bench-ui-") as folder:
        for store in cfg.stores.split(","):
            lines += bench_store(store, cfg, Path(folder))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
