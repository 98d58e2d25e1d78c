"""gunicorn with three workers (config/gunicorn.conf.py) on one fresh PostgreSQL database,
coordinated through PostgreSQL: every worker is a replica and one of them fires; each fire
runs once; a worker's SIGTERM hands the leadership over without losing a fire; SIGTERM
stops the whole server gracefully (SPEC §8)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import service_url
from tests.support.replicas import check_fires, executions, fresh_postgres_database, recording_job
from tests.support.server import ADMIN_PASSWORD, REPO_ROOT, STOP_TIMEOUT, Server, free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]

CONFIG = REPO_ROOT / "config" / "gunicorn.conf.py"
WORKERS = 3
JOB = "tick"
FIRES = 8  # fires of the 1-second job before the first check
SETTLE = 20.0  # seconds for the workers to start and agree on a leader


def gunicorn_binary() -> str:
    """The gunicorn installed next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "gunicorn"
    if beside.exists():
        return str(beside)
    found = shutil.which("gunicorn")
    if found is None:
        pytest.fail("gunicorn is not installed (pip install -e '.[all,dev]')")
    return found


class Gunicorn(Server):
    """`gunicorn -c config/gunicorn.conf.py -w N` serving create_app(), its stderr in a file;
    the HTTP client and the waits are Server's."""

    def __init__(self, env: dict[str, str], log_dir: Path, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stderr_path = log_dir / "gunicorn.stderr"
        self._stderr = self.stderr_path.open("wb")
        self._stdout = (log_dir / "gunicorn.stdout").open("wb")
        self.proc = subprocess.Popen(
            [
                gunicorn_binary(),
                "-c",
                str(CONFIG),
                "-w",
                str(workers),
                "scheduler_service:create_app()",
            ],
            cwd=REPO_ROOT,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"},  # read by the config
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,  # its own process group: close() ends the workers too
        )

    def info(self) -> dict[str, Any]:
        """GET /scheduler from whichever worker takes the connection."""
        answer = self.request("GET", "/scheduler")
        assert answer.status == 200, answer.body
        return answer.json()

    def runs(self, job_id: str) -> list[dict[str, Any]]:
        answer = self.request("GET", f"/scheduler/jobs/{job_id}/runs?limit=1000")
        assert answer.status == 200, answer.body
        return answer.json()

    def agreed_leader(self, workers: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Poll GET /scheduler (each request lands on some worker) until ``workers`` distinct
        replicas have answered, exactly one of them leads and all name it as the leader;
        return its answer and the latest answer of every replica."""
        seen: dict[str, dict[str, Any]] = {}

        def settled() -> dict[str, Any] | None:
            for _ in range(10):
                info = self.info()
                seen[info["replica_id"]] = info
            leaders = [i for i in seen.values() if i["role"] == "leader"]
            if len(seen) < workers or len(leaders) != 1:
                return None
            leader = leaders[0]["replica_id"]
            return leaders[0] if all(i["leader_id"] == leader for i in seen.values()) else None

        leader = self.wait_until(settled, f"{workers} workers agree on one leader", SETTLE)
        assert len(seen) == workers, f"more replicas answered than workers run: {sorted(seen)}"
        return leader, seen

    def booted_workers(self) -> set[int]:
        return {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", self.stderr())}

    def stopped_schedulers(self) -> set[int]:
        """Workers whose scheduler was shut down (the config's worker_exit hook)."""
        pattern = r"\[(\d+)\] INFO apscheduler\.scheduler: Scheduler has been shut down"
        return {int(p) for p in re.findall(pattern, self.stderr())}

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        super().close()


def pid_of(replica_id: str) -> int:
    """The pid in a default replica id, host:pid:random."""
    return int(replica_id.rsplit(":", 2)[1])


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def check_history(
    server: Gunicorn, log: Path, start: datetime, stopped: frozenset[int] = frozenset()
) -> list[dict[str, Any]]:
    """Every fire so far ran exactly once (see check_fires); return the claiming runs."""
    return check_fires(lambda: server.runs(JOB), log, JOB, start, stopped)


def wait_for_fire(server: Gunicorn, after: datetime, pid: int) -> None:
    """Wait until a fire scheduled at or after ``after`` succeeded in the worker ``pid``."""

    def fired() -> bool:
        return any(
            r["state"] == "succeeded"
            and r["pid"] == pid
            and datetime.fromisoformat(r["scheduled_run_time"]) >= after
            for r in server.runs(JOB)
        )

    server.wait_until(fired, f"a fire at or after {after.isoformat()} by pid {pid}", timeout=20)


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    with fresh_postgres_database() as database:
        group = f"scheduler-test-{secrets.token_hex(4)}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SCHEDULER_", "GUNICORN_")) and k != "WEB_CONCURRENCY"
        }
        env.update(
            SCHEDULER_ADMIN_PASSWORD=ADMIN_PASSWORD,
            SCHEDULER_JOBSTORE_URL=database,
            SCHEDULER_DATABASE_URL=database,
            SCHEDULER_COORDINATION=service_url("TEST_POSTGRES_URL"),
            SCHEDULER_COORDINATION_NAME=group,
            SCHEDULER_INSTANCE_PATH=str(tmp_path / "instance"),
            SCHEDULER_JOB_FILE_ROOTS=json.dumps([str(tmp_path)]),
            # Recent gunicorn opens a control socket in $XDG_RUNTIME_DIR: one per test run.
            XDG_RUNTIME_DIR=str(tmp_path),
        )
        server = Gunicorn(env, tmp_path, WORKERS)
        try:
            yield server
        finally:
            server.close()


def test_gunicorn_workers_elect_one_leader_fire_once_and_stop_gracefully(
    gunicorn: Gunicorn, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    gunicorn.wait_healthy()

    # Every worker built its own app (no preload): three replicas, one leader, all agree.
    leader, replicas = gunicorn.agreed_leader(WORKERS)
    pids = {pid_of(r) for r in replicas}
    assert len(pids) == WORKERS and gunicorn.pid not in pids, (gunicorn.pid, sorted(replicas))
    assert pids <= gunicorn.booted_workers()
    assert 0 < leader["lease_remaining_s"] <= 5.0
    assert leader["coordination"] == "postgresql"
    leader_pid = pid_of(leader["replica_id"])

    # A 1-second job, added through any worker: it fires on the leader only, once a second.
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    answer = gunicorn.request("POST", "/scheduler/jobs", recording_job(JOB, log, start))
    assert answer.status == 200, answer.body
    wait_for_fire(gunicorn, start + timedelta(seconds=FIRES - 1), leader_pid)
    runs = check_history(gunicorn, log, start)
    assert {r["pid"] for r in runs} == {leader_pid}
    assert {pid for _, pid in executions(log, JOB)} == {leader_pid}

    # SIGTERM the leader's worker: its scheduler stops and another worker leads; gunicorn
    # starts a replacement; every fire still runs once.
    stopped_at = datetime.now(UTC)
    os.kill(leader_pid, signal.SIGTERM)
    gunicorn.wait_until(lambda: not running(leader_pid), "the leader's worker exits", STOP_TIMEOUT)
    assert leader_pid in gunicorn.stopped_schedulers(), gunicorn.diagnose()
    second, replicas = gunicorn.agreed_leader(WORKERS)
    second_pid = pid_of(second["replica_id"])
    assert leader_pid not in {pid_of(r) for r in replicas}
    wait_for_fire(gunicorn, stopped_at + timedelta(seconds=2), second_pid)
    runs = check_history(gunicorn, log, start, stopped=frozenset({leader_pid}))
    assert {r["pid"] for r in runs} == {leader_pid, second_pid}
    assert {pid for _, pid in executions(log, JOB)} == {leader_pid, second_pid}
    last_first = max(r["scheduled_run_time"] for r in runs if r["pid"] == leader_pid)
    first_second = min(r["scheduled_run_time"] for r in runs if r["pid"] == second_pid)
    assert last_first < first_second, "the two leaders' fires interleave"

    # SIGTERM the master: the workers stop their schedulers and everything exits in time.
    began = time.monotonic()
    assert gunicorn.terminate(signal.SIGTERM) == 0, gunicorn.diagnose()
    assert time.monotonic() - began < STOP_TIMEOUT
    assert gunicorn.stopped_schedulers() == gunicorn.booted_workers(), gunicorn.diagnose()
    assert "Traceback" not in gunicorn.stderr(), gunicorn.diagnose()
    gunicorn.assert_no_secret_in_stderr()
