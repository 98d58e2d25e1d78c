"""The run lifecycle in one process (issue 14): durable retries, the fire ledger, the
cluster-wide pause flag and the replica registry, the sweep of dead processes' runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient

from scheduler_service.coordination.models import ReplicaBeat
from scheduler_service.coordination.replicas import machine_id, process_start
from scheduler_service.extensions import db
from scheduler_service.firing.loop import LEDGER_LIMIT
from scheduler_service.runs.models import Run
from tests.support.api import add_hourly_job as add
from tests.support.credentials import ADMIN, OPERATOR, VIEWER
from tests.support.waiting import wait_for


def runs_of(client: FlaskClient, job_id: str) -> list[dict]:
    response = client.get(f"/scheduler/jobs/{job_id}/runs?limit=1000", headers=VIEWER)
    assert response.status_code == 200
    return sorted(response.get_json(), key=lambda r: (r["attempt"], r["id"]))


def run_now(client: FlaskClient, job_id: str, wait: int = 10) -> dict:
    response = client.post(f"/scheduler/jobs/{job_id}/run?wait={wait}", headers=OPERATOR)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def boot_of(app: Flask) -> str:
    return app.extensions["scheduler_service"].registry.boot


# -- durable retries ---------------------------------------------------------------------------


def test_a_retry_waits_while_paused_and_survives_a_restart(
    make_app: Callable[..., Flask],
) -> None:
    first = make_app()  # the test settings start paused: manual runs run, retries wait
    client = first.test_client()
    add(client, "f", "jobs.examples:fail", ["boom"], retries=1, retry_delay=0.2)
    add(client, "probe", "jobs.examples:print_test", ["x"])
    failed = run_now(client, "f")
    assert (failed["state"], failed["attempt"], failed["trigger"]) == ("failed", 1, "manual")
    retry = wait_for(lambda: [r for r in runs_of(client, "f") if r["attempt"] == 2])[0]
    assert retry["state"] == "pending" and retry["not_before"] is not None
    assert retry["scheduled_run_time"] == failed["scheduled_run_time"]
    due = datetime.fromisoformat(retry["not_before"])
    wait_for(lambda: datetime.now(UTC) > due + timedelta(seconds=0.1), timeout=5)
    # A manual run requested after the retry fell due is taken by the same pass that
    # passes the retry over: once it ran, the retry has been seen, and left pending.
    assert run_now(client, "probe")["state"] == "succeeded"
    assert [r["state"] for r in runs_of(client, "f")] == ["failed", "pending"]

    first.extensions["scheduler_service"].shutdown()
    second = make_app()
    client = second.test_client()
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204
    runs = wait_for(
        lambda: (r := runs_of(client, "f")) and r[-1]["state"] == "failed" and r, timeout=10
    )
    assert [(r["attempt"], r["state"]) for r in runs] == [(1, "failed"), (2, "failed")]
    assert runs[0]["boot"] == boot_of(first) and runs[1]["boot"] == boot_of(second)
    assert runs[1]["error"] == "RuntimeError: boom"


def test_a_retry_of_a_removed_job_is_closed_not_run(client: FlaskClient) -> None:
    add(client, "gone", "jobs.examples:fail", ["x"], retries=2, retry_delay=0.2)
    run_now(client, "gone")
    wait_for(lambda: len(runs_of(client, "gone")) == 2)
    assert client.delete("/scheduler/jobs/gone", headers=ADMIN).status_code == 204
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204
    runs = wait_for(
        lambda: (r := runs_of(client, "gone")) and r[-1]["state"] != "pending" and r, timeout=10
    )
    assert [(r["attempt"], r["state"]) for r in runs] == [(1, "failed"), (2, "skipped")]
    assert runs[1]["error"] == "not run: the job was removed"


# -- the fire ledger ---------------------------------------------------------------------------


def fires_of(client: FlaskClient, job_id: str, query: str = "") -> tuple[list[dict], int]:
    response = client.get(f"/scheduler/jobs/{job_id}/fires{query}", headers=VIEWER)
    assert response.status_code == 200, response.get_json()
    return response.get_json(), int(response.headers["X-Total-Count"])


def test_the_ledger_records_every_instant_folded_into_a_run(client: FlaskClient) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=6)
    add(
        client,
        "tick",
        "jobs.examples:print_test",
        ["x"],
        trigger="interval",
        hours=None,
        seconds=1,
        start_date=start.isoformat(),
        next_run_time=start.isoformat(),
        misfire_grace_time=3600,
    )
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204
    until = start + timedelta(seconds=6.5)
    fires, total = wait_for(
        lambda: (
            (f := fires_of(client, "tick", f"?until={quote(until.isoformat())}"))
            and f[1] >= 7
            and f
        ),
        timeout=10,
    )
    assert total == len(fires) == 7  # start .. start + 6 s: one record each, no gap
    times = sorted(datetime.fromisoformat(f["scheduled_run_time"]) for f in fires)
    assert times == [start + timedelta(seconds=n) for n in range(7)]
    runs = [f for f in fires if f["outcome"] == "run"]
    coalesced = [f for f in fires if f["outcome"] == "coalesced"]
    assert len(runs) >= 1 and len(runs) + len(coalesced) == 7
    first_run = min(runs, key=lambda f: f["scheduled_run_time"])
    # the instants due before the scheduler began firing were folded into its first run
    assert all(f["coalesced_into"] == first_run["run_id"] for f in coalesced if f["no_leader"])
    assert all(f["state"] == "coalesced" and f["late_by"] is None for f in coalesced)
    assert first_run["no_leader"] is True and first_run["decided_by"]
    page, _ = fires_of(client, "tick", "?limit=2")
    assert len(page) == 2 and page[0]["scheduled_run_time"] > page[1]["scheduled_run_time"]


def test_a_next_run_time_in_the_year_1_is_bounded_work(client: FlaskClient) -> None:
    # Only a job that may run however late (misfire_grace_time null) can be given a time that
    # far back: with a limit, it is a 422 (tests/scheduler/test_limits.py).
    ancient = {"next_run_time": "0001-01-01T00:00:00", "misfire_grace_time": None}
    add(client, "ancient", "jobs.examples:print_test", ["x"], **ancient)
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204
    fires, total = wait_for(
        lambda: (f := fires_of(client, "ancient", "?limit=1000")) and f[1] and f, timeout=20
    )
    assert total <= LEDGER_LIMIT
    job = client.get("/scheduler/jobs/ancient", headers=VIEWER).get_json()
    assert datetime.fromisoformat(job["next_run_time"]) > datetime.now(UTC)
    assert {f["outcome"] for f in fires} <= {"run", "coalesced", "missed"}


# -- the cluster: pause flag and replica registry -----------------------------------------------


def test_pause_on_one_process_pauses_every_process_of_the_database(
    make_app: Callable[..., Flask],
) -> None:
    fast = {"SCHEDULER_HEARTBEAT_INTERVAL": 0.1, "SCHEDULER_HEARTBEAT_TIMEOUT": 5}
    one = make_app(**fast).test_client()
    two = make_app(**fast).test_client()  # a second process on the same service database
    assert one.post("/scheduler/resume", headers=OPERATOR).status_code == 204
    wait_for(lambda: two.get("/scheduler", headers=VIEWER).get_json()["state"] == "running")
    assert two.post("/scheduler/pause", headers=OPERATOR).status_code == 204
    wait_for(lambda: one.get("/scheduler", headers=VIEWER).get_json()["state"] == "paused")
    cluster = one.get("/scheduler/cluster", headers=VIEWER).get_json()
    assert cluster["paused"] is True
    assert len(cluster["replicas"]) == 2 and all(r["alive"] for r in cluster["replicas"])
    assert {r["role"] for r in cluster["replicas"]} == {"leader"}  # no coordination: both fire
    assert one.post("/scheduler/resume", headers=OPERATOR).status_code == 204
    wait_for(lambda: two.get("/scheduler", headers=VIEWER).get_json()["state"] == "running")


def test_the_cluster_lists_this_process_with_a_beating_heart(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(SCHEDULER_HEARTBEAT_INTERVAL=0.1, SCHEDULER_HEARTBEAT_TIMEOUT=5).test_client()
    first = client.get("/scheduler/cluster", headers=VIEWER).get_json()
    (me,) = first["replicas"]
    assert (me["pid"], me["alive"], me["host"]) == (os.getpid(), True, me["host"])
    wait_for(
        lambda: (
            client.get("/scheduler/cluster", headers=VIEWER).get_json()["replicas"][0][
                "last_heartbeat"
            ]
            > me["last_heartbeat"]
        )
    )


# -- the sweep of dead processes ---------------------------------------------------------------


def held_run(job_id: str, boot: str, state: str = "running") -> Run:
    now = datetime.now(UTC)
    return Run(
        job_id=job_id,
        trigger="schedule",
        state=state,
        attempt=1,
        scheduled_run_time=now,
        submitted_at=now - timedelta(hours=2),
        started_at=now if state == "running" else None,
        host="elsewhere",
        pid=1,  # as in a container: the pid says nothing
        boot=boot,
        result_truncated=False,
        log_truncated=False,
    )


def beat(boot: str, *, age: timedelta, machine: str = "another-machine", **extra) -> ReplicaBeat:
    seen = datetime.now(UTC) - age
    values = {"pid": 1, "pid_start": "1", **extra}
    return ReplicaBeat(
        boot=boot,
        replica_id=f"replica-{boot}",
        host="elsewhere",
        machine=machine,
        role="leader",
        version="test",
        started_at=seen,
        last_heartbeat=seen,
        **values,
    )


def test_the_leader_closes_the_runs_of_a_replica_whose_heartbeat_expired(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(SCHEDULER_HEARTBEAT_INTERVAL=0.1, SCHEDULER_HEARTBEAT_TIMEOUT=30)
    with app.app_context():
        db.session.add_all(
            [
                beat("deadbeef", age=timedelta(seconds=100)),  # expired: listed dead
                beat("ancient", age=timedelta(hours=1)),  # dead for over 10 timeouts: dropped
                beat("alive", age=timedelta()),
            ]
        )
        runs = [
            held_run("a", "deadbeef"),
            held_run("b", "deadbeef", "submitted"),
            held_run("c", "alive"),
            held_run("d", "vanished"),  # no heartbeat row at all, open for two hours
            held_run("e", "ancient"),
        ]
        db.session.add_all(runs)
        db.session.commit()
        ids = [run.id for run in runs]
    client = app.test_client()
    client.post("/scheduler/resume", headers=OPERATOR)  # the firing process sweeps

    def states() -> list[str]:
        return [client.get(f"/scheduler/runs/{i}", headers=VIEWER).get_json()["state"] for i in ids]

    wait_for(lambda: states()[0] == "unknown", timeout=10)
    assert states() == ["unknown", "unknown", "running", "unknown", "unknown"]
    ran = client.get(f"/scheduler/runs/{ids[0]}", headers=VIEWER).get_json()
    queued = client.get(f"/scheduler/runs/{ids[1]}", headers=VIEWER).get_json()
    assert "outcome was not recorded" in ran["error"] and ran["finished_at"]
    assert "may not have run" in queued["error"]
    listed = client.get("/scheduler/cluster", headers=VIEWER).get_json()["replicas"]
    alive = {r["boot"]: r["alive"] for r in listed}
    assert alive["deadbeef"] is False and alive["alive"] is True and "ancient" not in alive


def test_a_restart_on_the_same_machine_closes_its_predecessors_runs_at_once(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    dead_pid = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    app = make_app(SCHEDULER_HEARTBEAT_TIMEOUT=3600)  # the heartbeat would take an hour
    with app.app_context():
        db.session.add_all(
            [
                beat("gone", age=timedelta(), machine=machine_id(), pid=dead_pid, pid_start="7"),
                # this very process, under another boot: alive, whatever its pid
                beat(
                    "sibling",
                    age=timedelta(),
                    machine=machine_id(),
                    pid=os.getpid(),
                    pid_start=process_start(os.getpid()),
                ),
            ]
        )
        runs = [held_run("a", "gone"), held_run("b", "sibling")]
        db.session.add_all(runs)
        db.session.commit()
        ids = [run.id for run in runs]
    app.extensions["scheduler_service"].shutdown()
    client = make_app(SCHEDULER_HEARTBEAT_TIMEOUT=3600).test_client()
    states = [client.get(f"/scheduler/runs/{i}", headers=VIEWER).get_json()["state"] for i in ids]
    assert states == ["unknown", "running"]
