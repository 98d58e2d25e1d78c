"""kill -9 tells the truth (issue 14): a service killed during a burst of 300 jobs of about a
second leaves, once restarted, no run `submitted` or `running`; a run recorded `succeeded` did
its work; and a run that did its work but whose outcome was lost says `unknown`, never
`abandoned`.

Played twice on real `scheduler-service run` processes with a SQLite job store and database in
one instance folder: as a plain process, and as PID 1 of its own PID namespace (a container's
case), where the old runs and the new process both carry PID 1, so only the per-boot id and
the heartbeat can tell that the old runs' process is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import (
    ADMIN_PASSWORD,
    REPO_ROOT,
    Server,
    console_script,
    free_port,
    servers,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

JOBS = 300  # the burst (issue 14 asks for at least 300)
WORKERS = 20  # thread executor: 20 lines a second, so a 300-job burst lasts about 15 s
KILL_AFTER_LINES = 100  # a good share done, most still to run
LATEST_KILL_LINES = 200  # a kill later than this is not "during the burst"
SETTLE_TIMEOUT = 60.0  # restart, close the old runs, run the rest (about 12 s of work)
OPEN_STATES = ("submitted", "running")


class NamespacedServer(Server):
    """`scheduler-service run` as PID 1 of a new PID namespace (`unshare --pid --fork`).

    ``proc`` is the unshare process; ``init_pid`` is the service's host PID (its PID 1).
    ``--kill-child`` takes the service down with unshare if the test kills unshare.
    """

    def __init__(self, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr = self.stderr_path.open("wb")
        self._stdout = (log_dir / f"{name}.stdout").open("wb")
        command = [*console_script(), "run", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *command],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
        )
        self.init_pid: int = wait_for(
            self._child, timeout=10, what="unshare forks the namespace's PID 1"
        )
        status = Path(f"/proc/{self.init_pid}/status").read_text()
        nspid = next(line.split()[1:] for line in status.splitlines() if line.startswith("NSpid"))
        assert nspid == [str(self.init_pid), "1"], f"not PID 1 of a new namespace: NSpid {nspid}"

    def _child(self) -> int | None:
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except FileNotFoundError:
            return None
        return int(children.split()[0]) if children.split() else None

    def kill_init(self) -> None:
        """SIGKILL the namespace's PID 1 (the service); the kernel ends the rest of it."""
        os.kill(self.init_pid, signal.SIGKILL)
        self.proc.wait(timeout=10)  # unshare reaps its child, then exits


def lines_of(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def all_runs(server: Server) -> list[dict[str, Any]]:
    """Every run of the history, page by page (X-Total-Count)."""
    runs: list[dict[str, Any]] = []
    while True:
        answer = server.request("GET", f"/scheduler/runs?limit=1000&offset={len(runs)}")
        assert answer.status == 200, answer.body
        page = answer.json()
        runs += page
        if not page or len(runs) >= int(answer.headers["X-Total-Count"]):
            return runs


def total(server: Server, path: str) -> int:
    answer = server.request("GET", path)
    assert answer.status == 200, answer.body
    return int(answer.headers["X-Total-Count"])


def open_runs(server: Server) -> int:
    return sum(total(server, f"/scheduler/runs?state={s}&limit=1") for s in OPEN_STATES)


@pytest.fixture
def service_env(tmp_path: Path) -> dict[str, str]:
    """One instance folder (SQLite job store and service database), fast heartbeats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(
        SCHEDULER_INSTANCE_PATH=str(tmp_path / "instance"),
        SCHEDULER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        SCHEDULER_EXECUTORS=f'{{"default": {{"type": "threadpool", "max_workers": {WORKERS}}}}}',
        SCHEDULER_ALLOWED_MODULES='["jobs", "tests.app_jobs"]',
        SCHEDULER_HEARTBEAT_INTERVAL="0.5",
        SCHEDULER_HEARTBEAT_TIMEOUT="3",
        PYTHONUNBUFFERED="1",
        # The service imports tests.app_jobs: the repository must be on its path.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


@pytest.fixture(params=["process", "pid1"])
def start_service(
    request: pytest.FixtureRequest, service_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], Server]]:
    """Start the service (a restart is a second call), as a plain process or as PID 1 of a
    new PID namespace; kill whatever is left at the end."""
    if request.param == "pid1" and shutil.which("unshare") is None:
        reason = "unshare (util-linux) is not installed: no PID namespace for the service"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    kind = NamespacedServer if request.param == "pid1" else Server
    yield from servers(service_env, tmp_path, kind=kind, prefix="service")


def work_seconds(i: int) -> float:
    """0.5 to 1.5 s of work (1 s on average): spread, the runs finish at any moment, not in
    waves of WORKERS, so the kill does not fall just after a wave by construction."""
    return 0.5 + (i % 21) * 0.05


def add_burst(server: Server, log: Path) -> datetime:
    """Add JOBS date jobs, each writing a line naming itself after its work; return the
    latest run_date."""
    latest = datetime.now(UTC)
    for i in range(JOBS):
        job_id = f"burst-{i:03d}"
        latest = datetime.now(UTC) + timedelta(seconds=1)
        job = {
            "id": job_id,
            "func": "tests.app_jobs:sleep_then_record",
            "args": [str(log), job_id, work_seconds(i)],
            "trigger": "date",
            "run_date": latest.isoformat(),
            "misfire_grace_time": 3600,
        }
        answer = server.request("POST", "/scheduler/jobs", job)
        assert answer.status == 200, answer.body
    return latest


def kill(server: Server) -> None:
    if isinstance(server, NamespacedServer):
        server.kill_init()
    else:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)


def test_kill_9_during_a_burst_leaves_no_open_run_and_no_false_outcome(
    start_service: Callable[[], Server], tmp_path: Path
) -> None:
    log = tmp_path / "lines.log"
    first = start_service()
    assert first.request("POST", "/scheduler/pause").status == 204
    latest = add_burst(first, log)
    wait_for(lambda: datetime.now(UTC) > latest, timeout=5, what="every run_date has passed")
    assert not log.exists(), "a job ran while the scheduler was paused"

    assert first.request("POST", "/scheduler/resume").status == 204
    first.wait_until(
        lambda: len(lines_of(log)) >= KILL_AFTER_LINES, f"{KILL_AFTER_LINES} lines", 60
    )
    seen = first.request("GET", "/scheduler/runs?limit=50")
    assert seen.status == 200, seen.body
    boots = {run["boot"] for run in seen.json()}
    kill(first)
    before_kill = lines_of(log)  # the first process is gone: every line so far is its own
    assert len(before_kill) <= LATEST_KILL_LINES, (
        f"{len(before_kill)} lines at the kill: the burst was nearly over, not under way"
    )
    assert len(boots) == 1 and None not in boots, f"runs of one process, one boot: {boots}"
    (old_boot,) = boots

    second = start_service()

    def left() -> str:
        jobs = total(second, "/scheduler/jobs?limit=1")
        return f"open runs: {open_runs(second)}, jobs left: {jobs}"

    wait_for(
        lambda: left() == "open runs: 0, jobs left: 0",
        timeout=SETTLE_TIMEOUT,
        interval=0.2,
        what="no run submitted or running and no due job left",
        details=lambda: f"{left()}\n{second.diagnose()}",
    )
    runs = all_runs(second)
    lines = lines_of(log)

    # No fire ran twice, and the history has no open run.
    twice = sorted(value for value, n in Counter(lines).items() if n > 1)
    assert not twice, f"jobs that wrote their line twice: {twice}"
    still_open = [r for r in runs if r["state"] in OPEN_STATES]
    assert not still_open, f"runs left open after the restart: {still_open[:5]}"

    # A run recorded succeeded did its work.
    written = set(lines)
    false_success = [r for r in runs if r["state"] == "succeeded" and r["job_id"] not in written]
    assert not false_success, f"succeeded without writing its line: {false_success[:5]}"

    # The killed process's runs: those that wrote their line succeeded (95 % at least) or
    # say `unknown`; those that did not say `unknown`, with the last step recorded.
    old = [r for r in runs if r["boot"] == old_boot]
    if isinstance(first, NamespacedServer):
        assert {r["pid"] for r in old} == {1}, "the killed service's runs carry its PID 1"
    by_job: dict[str, list[dict[str, Any]]] = {}
    for run in old:
        by_job.setdefault(run["job_id"], []).append(run)
    unrecorded = sorted(set(before_kill) - set(by_job))
    assert not unrecorded, f"lines of the killed process without a run of it: {unrecorded[:10]}"
    several = {job: rs for job, rs in by_job.items() if len(rs) > 1}
    assert not several, f"a fire with several runs in one process: {several}"
    did_work = [by_job[job][0] for job in set(before_kill)]
    states = Counter(r["state"] for r in did_work)
    assert set(states) <= {"succeeded", "unknown"}, f"runs that did their work: {states}"
    assert states["succeeded"] >= 0.95 * len(did_work), f"runs that did their work: {states}"
    rest = [r for r in old if r["job_id"] not in set(before_kill)]
    assert rest, "no run was in flight at the kill: the test killed nothing"
    wrong = [r for r in rest if r["state"] != "unknown" or not r["error"]]
    assert not wrong, f"runs in flight at the kill, not `unknown` with a reason: {wrong[:5]}"

    # The jobs the killed process never fired ran once each on the restarted one.
    after_kill = set(lines) - set(before_kill)
    late = [r for r in runs if r["boot"] != old_boot and r["job_id"] in after_kill]
    assert {r["state"] for r in late} <= {"succeeded"}, Counter(r["state"] for r in late)
