"""Several real `scheduler-service run` processes sharing one PostgreSQL job store and run
history, coordinated through ZooKeeper, Redis or PostgreSQL (SPEC §8)."""

from __future__ import annotations

import os
import secrets
from collections import Counter
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.blog_fixtures import fresh_database
from tests.helpers import service_url, wait_for
from tests.server import ADMIN_PASSWORD, Server

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


class Cluster:
    """N replicas of the service on one shared store, one coordination group."""

    def __init__(self, backend: str, database_url: str, log_dir: Path, **settings: str) -> None:
        variable, coordination_url = COORDINATION[backend]
        group = f"scheduler-test-{secrets.token_hex(4)}"
        self.log_dir = log_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
        self.env.update(
            SCHEDULER_ADMIN_PASSWORD=ADMIN_PASSWORD,
            SCHEDULER_JOBSTORE_URL=database_url,
            SCHEDULER_DATABASE_URL=database_url,
            SCHEDULER_COORDINATION=coordination_url(service_url(variable), group),
            SCHEDULER_COORDINATION_NAME=group,
            SCHEDULER_ALLOWED_MODULES='["jobs", "tests.app_jobs"]',
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


def fire_times(runs: list[dict[str, Any]]) -> Counter[datetime]:
    """How many runs claimed each scheduled time (the first attempts that ran or were
    meant to run; skipped_duplicate rows never count)."""
    return Counter(
        datetime.fromisoformat(r["scheduled_run_time"])
        for r in runs
        if r["attempt"] == 1 and r["trigger"] == "schedule" and r["state"] != "skipped_duplicate"
    )
