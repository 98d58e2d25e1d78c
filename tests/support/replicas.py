"""Several real `scheduler-service run` processes sharing one PostgreSQL job store and run
history, coordinated through ZooKeeper, Redis or PostgreSQL (SPEC §8)."""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.backends import service_url
from tests.support.databases import fresh_database
from tests.support.server import ADMIN_PASSWORD, Server
from tests.support.waiting import wait_for

# backend -> (the TEST_* variable of its server, its SCHEDULER_COORDINATION URL for a group)
COORDINATION = {
    "zookeeper": ("TEST_ZOOKEEPER_HOSTS", lambda value, group: f"zookeeper://{value}/{group}"),
    "redis": ("TEST_REDIS_URL", lambda value, group: value),
    "postgresql": ("TEST_POSTGRES_URL", lambda value, group: value),
}


def fresh_postgres_database() -> AbstractContextManager[str]:
    """A new database on the TEST_POSTGRES_URL server (job store and run history), dropped
    afterwards with every connection to it."""
    return fresh_database("TEST_POSTGRES_URL")


def drop_group(backend: str, group: str) -> None:
    """Remove what a coordination group leaves on its server (ZooKeeper nodes, Redis keys)."""
    if backend == "zookeeper":
        from kazoo.client import KazooClient

        client = KazooClient(hosts=service_url("TEST_ZOOKEEPER_HOSTS"), timeout=5)
        client.start(timeout=5)
        try:
            client.delete(f"/{group}", recursive=True)
        finally:
            client.stop()
            client.close()
    elif backend == "redis":
        import redis

        with redis.Redis.from_url(service_url("TEST_REDIS_URL")) as client:
            client.delete(f"{group}:leader")


class Cluster:
    """N replicas of the service on one shared store, one coordination group."""

    def __init__(self, backend: str, database_url: str, log_dir: Path, **settings: str) -> None:
        variable, coordination_url = COORDINATION[backend]
        group = f"scheduler-test-{secrets.token_hex(4)}"
        self.backend, self.group = backend, group
        self.log_dir = log_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
        self.env.update(
            SCHEDULER_ADMIN_PASSWORD=ADMIN_PASSWORD,
            SCHEDULER_JOBSTORE_URL=database_url,
            SCHEDULER_DATABASE_URL=database_url,
            SCHEDULER_COORDINATION=coordination_url(service_url(variable), group),
            SCHEDULER_COORDINATION_NAME=group,
            SCHEDULER_ALLOWED_MODULES='["jobs", "tests.app_jobs"]',
            # The jobs' logs are written in log_dir (each replica's instance folder is refused).
            SCHEDULER_JOB_FILE_ROOTS=json.dumps([str(log_dir)]),
            PYTHONUNBUFFERED="1",
            **settings,
        )
        self.servers: list[Server] = []

    def start(self, count: int) -> list[Server]:
        """Start ``count`` replicas at once; return them when all answer /healthz."""
        new = []
        for _ in range(count):
            index = len(self.servers)
            instance = self.log_dir / f"replica{index}"
            env = {**self.env, "SCHEDULER_INSTANCE_PATH": str(instance)}
            server = Server(env, self.log_dir, f"replica{index}")
            self.servers.append(server)
            new.append(server)
        for server in new:
            server.wait_healthy()
        return new

    def alive(self) -> list[Server]:
        return [s for s in self.servers if s.proc.poll() is None and not getattr(s, "stopped", 0)]

    def info(self, server: Server) -> dict[str, Any]:
        answer = server.request("GET", "/scheduler")
        assert answer.status == 200, answer.body
        return answer.json()

    def leader(self, among: list[Server] | None = None, timeout: float = 15.0) -> Server:
        """Wait until exactly one of ``among`` (the live replicas) leads and all agree."""

        def settled() -> Server | None:
            servers = among if among is not None else self.alive()
            infos = [self.info(s) for s in servers]
            leaders = [s for s, i in zip(servers, infos, strict=True) if i["role"] == "leader"]
            if len(leaders) != 1:
                return None
            leader_id = infos[servers.index(leaders[0])]["replica_id"]
            return leaders[0] if all(i["leader_id"] == leader_id for i in infos) else None

        return wait_for(settled, timeout=timeout, interval=0.1, what="one agreed leader")

    def runs(self, server: Server, job_id: str) -> list[dict[str, Any]]:
        answer = server.request("GET", f"/scheduler/jobs/{job_id}/runs?limit=1000")
        assert answer.status == 200, answer.body
        return answer.json()

    def close(self) -> None:
        for server in self.servers:
            server.close()
        drop_group(self.backend, self.group)


def fire_times(runs: list[dict[str, Any]]) -> Counter[datetime]:
    """How many runs claimed each scheduled time (the first attempts that ran or were
    meant to run; skipped_duplicate rows never count)."""
    return Counter(
        datetime.fromisoformat(r["scheduled_run_time"])
        for r in runs
        if r["attempt"] == 1 and r["trigger"] == "schedule" and r["state"] != "skipped_duplicate"
    )


def recording_job(job_id: str, log: Path, start: datetime) -> dict[str, Any]:
    """A 1-second job from ``start`` that writes each run down in ``log``; late fires still
    run (no coalescing, two minutes of grace), so a failover loses none. After a failover the
    new leader runs the missed fires as one batch, which counts as one instance: room for
    more keeps the next fire from being skipped (max_instances) while the batch runs.

    The first fire is ``start`` even if the POST lands after it, on a loaded machine: an
    interval trigger alone would begin at the next second after the POST, and a check of
    every fire from ``start`` would miss the first ones; a late first fire runs at once."""
    return {
        "id": job_id,
        "func": "jobs.examples:record",
        "args": [str(log), job_id],
        "trigger": "interval",
        "seconds": 1,
        "start_date": start.isoformat(),
        "next_run_time": start.isoformat(),
        "coalesce": False,
        "misfire_grace_time": 120,
        "max_instances": 5,
    }


def executions(log: Path, job_id: str) -> list[tuple[float, int]]:
    """(time, pid) of every execution ``job_id`` itself wrote down in ``log``."""
    if not log.exists():
        return []
    rows = [line.split() for line in log.read_text().splitlines()]
    return [(float(t), int(pid)) for t, pid, value in rows if value == job_id]


def check_fires(
    fetch_runs: Callable[[], list[dict[str, Any]]],
    log: Path,
    job_id: str,
    start: datetime,
    gone: frozenset[int] = frozenset(),
) -> list[dict[str, Any]]:
    """Assert every second from ``start`` to the last fire was claimed exactly once, and
    that the job's own log agrees with the run history; return the claiming runs.

    Only the leader fires, so no replica even tries a claimed fire (``skipped_duplicate``)
    and no outcome is unknown; except that a leader that is ``gone`` (killed or stopped) may
    have claimed a fire and ended before it moved the job on: its successor then fires it
    again and finds the claim, and its own run may be closed as unknown or never finish.
    """
    before = executions(log, job_id)  # the log around the fetch: runs go on meanwhile
    runs = fetch_runs()
    after = executions(log, job_id)
    claims = fire_times(runs)
    twice = sorted(t.isoformat() for t, n in claims.items() if n > 1)
    assert not twice, f"{job_id}: fires run more than once: {twice}"
    assert min(claims) == start, f"{job_id}: the first fire is {min(claims)}, not {start}"
    span = int((max(claims) - start).total_seconds())
    lost = sorted(
        t.isoformat() for t in {start + timedelta(seconds=i) for i in range(span + 1)} - set(claims)
    )
    assert not lost, f"{job_id}: fires never run: {lost}"
    holders = {r["scheduled_run_time"]: r["pid"] for r in runs if r["state"] != "skipped_duplicate"}
    bad = [
        r
        for r in runs
        if r["state"] not in ("succeeded", "submitted", "running")
        and not (r["state"] == "unknown" and r["pid"] in gone)
        and not (r["state"] == "skipped_duplicate" and holders.get(r["scheduled_run_time"]) in gone)
    ]
    assert not bad, f"{job_id}: unexpected runs {bad}"
    claiming = [r for r in runs if r["state"] != "skipped_duplicate"]
    succeeded = [r for r in claiming if r["state"] == "succeeded"]
    # Each recorded success wrote its line first; each line belongs to a claim.
    assert len(succeeded) <= len(after) and len(before) <= len(claiming), (job_id, runs)
    return claiming


# -- issue 14: the fire ledger, the cluster view, single runs ---------------------------------


def utc(text: str) -> datetime:
    """A timestamp of the API (ISO 8601 with an offset) as an aware datetime."""
    return datetime.fromisoformat(text)


def fires(
    server: Server,
    job_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every page of ``job_id``'s fire ledger (GET /scheduler/jobs/<id>/fires), newest first."""
    from urllib.parse import urlencode

    items: list[dict[str, Any]] = []
    while True:
        query: dict[str, Any] = {"limit": 1000, "offset": len(items)}
        if since is not None:
            query["since"] = since.isoformat()
        if until is not None:
            query["until"] = until.isoformat()
        answer = server.request("GET", f"/scheduler/jobs/{job_id}/fires?{urlencode(query)}")
        assert answer.status == 200, answer.body
        page = answer.json()
        items.extend(page)
        if not page or len(items) >= int(answer.headers["X-Total-Count"]):
            return items


def cluster_view(server: Server) -> dict[str, Any]:
    """GET /scheduler/cluster: the pause flag, the leader and every replica's heartbeat row."""
    answer = server.request("GET", "/scheduler/cluster")
    assert answer.status == 200, answer.body
    return answer.json()


def run_record(server: Server, run_id: int) -> dict[str, Any]:
    """GET /scheduler/runs/<id>."""
    answer = server.request("GET", f"/scheduler/runs/{run_id}")
    assert answer.status == 200, (run_id, answer.body)
    return answer.json()


def stderr_tails(cluster: Cluster, lines: int = 40) -> str:
    """The last ``lines`` lines of every replica's stderr, for a failure's message."""
    return "\n".join(
        f"--- {s.stderr_path.name} (pid {s.pid}):\n" + "\n".join(s.stderr().splitlines()[-lines:])
        for s in cluster.servers
    )
