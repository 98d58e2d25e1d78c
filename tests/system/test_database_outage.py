"""The service database goes down while runs finish (issue 14): once it is back, every run
that finished meanwhile reaches its final state, with its true outcome and times, and the
service is never restarted.

The outage is played on a private PostgreSQL server the test starts (Debian's initdb and
pg_ctl, as the `postgres` user, on a spare port of 127.0.0.1), never on the shared one. The
job store is in memory, so only the run history's database goes away.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ADMIN_PASSWORD, REPO_ROOT, Server, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

FINAL_TIMEOUT = 30.0  # from the database's return to every run recorded final
OPEN_STATES = ("pending", "submitted", "running")
HEARTBEAT_TIMEOUT = 3.0


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own in ``folder`` (trust auth, TCP on 127.0.0.1)."""

    DATABASE = "scheduler_outage"

    def __init__(self, bindir: Path, folder: Path) -> None:
        self.bindir = bindir
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        # initdb refuses to run as root: run the server's tools as the postgres user.
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.DATABASE}"

    def _tool(self, name: str, *args: str, check: bool = True) -> None:
        command = [*self.as_owner, str(self.bindir / name), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if check:
            assert done.returncode == 0, f"{name} {args} failed:\n{done.stdout}\n{done.stderr}"

    def create(self) -> None:
        """initdb, start, and create the service's database."""
        self._tool("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        self._tool(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.DATABASE
        )

    def start(self) -> None:
        """Start the server on its port and data folder; return when it accepts connections."""
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder} -c fsync=off"
        log = str(self.folder / "server.log")
        self._tool("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop the server at once, ending every session (an outage)."""
        self._tool("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs (whatever state the test left) and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            self._tool("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _version(pg_ctl: str) -> tuple[int, ...]:
    return tuple(int(part) for part in Path(pg_ctl).parents[1].name.split("."))


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server, stopped and removed after the test."""
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not found:
        _skip_or_fail("PostgreSQL's server binaries are not installed (/usr/lib/postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _skip_or_fail("runuser is missing: initdb cannot run as root")
    folder = Path(tempfile.mkdtemp(prefix="scheduler-outage-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PrivatePostgres(Path(max(found, key=_version)).parent, folder)
    try:
        server.create()
        yield server
    finally:
        server.remove()


@pytest.fixture
def service(private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Server]:
    """The service as a real process: run history on the private server, jobs in memory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(
        SCHEDULER_INSTANCE_PATH=str(tmp_path / "instance"),
        SCHEDULER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        SCHEDULER_DATABASE_URL=private_postgres.url,
        SCHEDULER_JOBSTORE_URL="memory://",
        SCHEDULER_ALLOWED_MODULES='["jobs", "tests.app_jobs"]',
        SCHEDULER_HEARTBEAT_INTERVAL="0.5",
        SCHEDULER_HEARTBEAT_TIMEOUT=str(HEARTBEAT_TIMEOUT),
        SCHEDULER_STORE_TIMEOUT="2",
        PYTHONUNBUFFERED="1",
        # The service imports tests.app_jobs: the repository must be on its path.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    server = Server(env, tmp_path, "service")
    try:
        server.wait_healthy()
        yield server
    finally:
        server.close()


def run_of(server: Server, run_id: int) -> dict[str, Any] | None:
    """The run's record, or None while the history cannot be read."""
    answer = server.request("GET", f"/scheduler/runs/{run_id}")
    return answer.json() if answer.status == 200 else None


def database_down(server: Server) -> bool:
    answer = server.request("GET", "/readyz", auth=False)
    return answer.status == 503 and answer.json()["checks"].get("database") != "ok"


def when(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


@pytest.mark.parametrize(
    "outage_after_finish",
    [1.0, HEARTBEAT_TIMEOUT + 2.0],
    ids=["short", "longer-than-heartbeat-timeout"],
)
def test_runs_that_finish_while_the_database_is_down_are_recorded_when_it_returns(
    private_postgres: PrivatePostgres,
    service: Server,
    tmp_path: Path,
    outage_after_finish: float,
) -> None:
    gate, log = tmp_path / "gate", tmp_path / "lines.log"
    outcomes = {"ok-0": None, "ok-1": None, "ok-2": None, "ok-3": None, "bad": "bad"}
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()  # never fires by itself
    run_ids: dict[str, int] = {}
    for job_id, failure in outcomes.items():
        job = {
            "id": job_id,
            "func": "tests.app_jobs:record_at_gate",
            "args": [str(gate), str(log), job_id, failure is not None],
            "trigger": "date",
            "run_date": later,
        }
        if failure is not None:  # its retry is requested while the database is down
            job.update(retries=1, retry_delay=0.5)
        assert service.request("POST", "/scheduler/jobs", job).status == 200
        answer = service.request("POST", f"/scheduler/jobs/{job_id}/run")
        assert answer.status == 202, answer.body
        run_ids[job_id] = answer.json()["id"]

    def all_running() -> bool:
        runs = [run_of(service, i) for i in run_ids.values()]
        return all(run is not None and run["state"] == "running" for run in runs)

    service.wait_until(all_running, "every run is running in the history", 15)

    private_postgres.stop()
    service.wait_until(lambda: database_down(service), "/readyz reports the database down", 10)
    # Reading the history while the database is down is a 503 with the JSON error body.
    down = service.request("GET", "/scheduler/runs")
    assert down.status == 503, down.body
    assert down.json()["error_message"] == "the service database is unavailable"
    opened = datetime.now(UTC)
    gate.touch()  # the runs finish now, the database still down
    service.wait_until(
        lambda: log.exists() and len(log.read_text().splitlines()) == 5,
        "every run did its work",
        10,
    )
    # Keep the database down a while longer: the writer must hold what it could not write.
    back_at = time.monotonic() + outage_after_finish
    service.wait_until(
        lambda: service.proc.poll() is not None or time.monotonic() >= back_at,
        "the outage's end",
        outage_after_finish + 5,
    )
    assert service.proc.poll() is None, f"the service died in the outage\n{service.diagnose()}"
    assert database_down(service), "the database came back before the test restarted it"
    restarted = datetime.now(UTC)
    private_postgres.start()

    def final() -> dict[str, dict[str, Any]] | None:
        runs = {job_id: run_of(service, i) for job_id, i in run_ids.items()}
        if any(r is None or r["state"] in OPEN_STATES for r in runs.values()):
            return None
        return runs  # type: ignore[return-value]

    runs = wait_for(
        final,
        timeout=FINAL_TIMEOUT,
        interval=0.2,
        what="every run recorded final after the database came back",
        details=lambda: f"{[run_of(service, i) for i in run_ids.values()]}\n{service.diagnose()}",
    )
    assert service.proc.poll() is None, "the service was not restarted: the same process"
    for job_id, failure in outcomes.items():
        run = runs[job_id]
        expected = "succeeded" if failure is None else "failed"
        assert run["state"] == expected, run
        # Its true times: it finished in the outage, not when its record could be written.
        assert opened <= when(run["finished_at"]) <= restarted, run
        worked = (opened - when(run["started_at"])).total_seconds()
        assert run["duration"] is not None and run["duration"] >= worked - 0.1, run
        if failure is not None:
            assert failure in (run["error"] or ""), run
            assert "RuntimeError" in (run["traceback"] or ""), run

    # The failed run's retry, which the database could not take in the outage, is recorded
    # and run once it answers.
    def retried() -> dict[str, Any] | None:
        runs = service.request("GET", "/scheduler/jobs/bad/runs").json()
        second = [r for r in runs if r["attempt"] == 2]
        return second[0] if second and second[0]["state"] == "failed" else None

    retry = wait_for(retried, timeout=FINAL_TIMEOUT, what="the retry of the failed run")
    assert retry["scheduled_run_time"] == runs["bad"]["scheduled_run_time"], retry
    answer = service.request("GET", "/scheduler/runs?limit=100")
    assert answer.status == 200, answer.body
    expected = sorted([*run_ids.values(), retry["id"]])
    assert sorted(r["id"] for r in answer.json()) == expected, answer.json()
