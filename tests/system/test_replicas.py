"""Three real replicas per coordination backend on one PostgreSQL job store: one fires, none
twice, none lost; a SIGKILLed leader is replaced within the lease; a SIGSTOPped leader does
not fire after SIGCONT until it leads again (SPEC §8)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.replicas import (
    COORDINATION,
    Cluster,
    check_fires,
    executions,
    fresh_postgres_database,
    recording_job,
)
from tests.support.server import Server

pytestmark = [pytest.mark.services, pytest.mark.slow]

LEASE = 5.0  # the default SCHEDULER_COORDINATION_LEASE
TAKEOVER = 10.0  # the target for a failover with the defaults
JOBS = ("tick", "tock")


@pytest.fixture(params=sorted(COORDINATION))
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    with fresh_postgres_database() as database:
        # A long re-check: a job added through a follower fires on time only if the
        # leader hears of it.
        cluster = Cluster(request.param, database, tmp_path, SCHEDULER_COORDINATION_RECHECK="60")
        try:
            yield cluster
        finally:
            cluster.close()


def add_jobs(via: Server, log: Path) -> datetime:
    """Two 1-second jobs that record each run; return their first fire time."""
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    for job_id in JOBS:
        answer = via.request("POST", "/scheduler/jobs", recording_job(job_id, log, start))
        assert answer.status == 200, answer.body
    return start


def check_history(
    cluster: Cluster, via: Server, log: Path, start: datetime, killed: frozenset[int] = frozenset()
) -> dict[str, list[dict[str, Any]]]:
    """Every fire of both jobs so far ran exactly once (see check_fires)."""
    return {
        job_id: check_fires(lambda j=job_id: cluster.runs(via, j), log, job_id, start, killed)
        for job_id in JOBS
    }


def wait_for_fires(cluster: Cluster, via: Server, after: datetime, by: Server) -> None:
    """Wait until both jobs have a succeeded run scheduled after ``after``, fired by ``by``."""

    def fired() -> bool:
        return all(
            any(
                r["state"] == "succeeded"
                and r["pid"] == by.pid
                and datetime.fromisoformat(r["scheduled_run_time"]) > after
                for r in cluster.runs(via, job_id)
            )
            for job_id in JOBS
        )

    via.wait_until(fired, f"fires after {after.isoformat()} by pid {by.pid}", timeout=20)


def test_three_replicas_fire_every_fire_once_through_failover_and_pause(
    cluster: Cluster, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    cluster.start(3)
    leader = cluster.leader()
    followers = [s for s in cluster.servers if s is not leader]
    info = cluster.info(leader)
    assert info["firing"] is True and 0 < info["lease_remaining_s"] <= LEASE
    for follower in followers:
        assert cluster.info(follower)["firing"] is False
        assert follower.request("GET", "/readyz", auth=False).json()["role"] == "follower"

    # Steady state: jobs added through a follower fire on the leader only, once a second.
    start = add_jobs(followers[0], log)
    leader.wait_until(
        lambda: all(len(executions(log, j)) >= 1 for j in JOBS), "first fires", timeout=8
    )
    wait_for_fires(cluster, followers[1], start + timedelta(seconds=8), by=leader)
    history = check_history(cluster, followers[1], log, start)
    assert {r["pid"] for runs in history.values() for r in runs} == {leader.pid}
    assert {pid for j in JOBS for _, pid in executions(log, j)} == {leader.pid}

    # SIGKILL the leader: a follower takes over within the lease; no fire lost or doubled.
    leader.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    leader.proc.wait(timeout=10)
    second = cluster.leader(among=followers, timeout=TAKEOVER)
    assert time.monotonic() - killed_at < TAKEOVER
    kill_time = datetime.now(UTC)
    wait_for_fires(cluster, second, kill_time + timedelta(seconds=3), by=second)
    check_history(cluster, second, log, start, killed=frozenset({leader.pid}))

    # SIGSTOP the new leader for longer than its lease: the third replica takes over, and
    # the stopped one fires nothing after SIGCONT until it leads again.
    third = next(s for s in followers if s is not second)
    second.proc.send_signal(signal.SIGSTOP)
    second.stopped = True  # type: ignore[attr-defined]
    try:
        assert cluster.leader(among=[third], timeout=TAKEOVER + LEASE) is third
        wait_for_fires(cluster, third, datetime.now(UTC) + timedelta(seconds=2), by=third)
    finally:
        woke = datetime.now(UTC)
        second.proc.send_signal(signal.SIGCONT)
        second.stopped = False  # type: ignore[attr-defined]
    assert cluster.leader(timeout=TAKEOVER) is third
    assert cluster.info(second)["role"] == "follower"
    wait_for_fires(cluster, third, datetime.now(UTC) + timedelta(seconds=2), by=third)
    history = check_history(cluster, third, log, start, killed=frozenset({leader.pid}))
    late = [
        r
        for runs in history.values()
        for r in runs
        if r["pid"] == second.pid and datetime.fromisoformat(r["submitted_at"]) >= woke
    ]
    assert not late, f"the paused leader fired after it woke: {late}"
