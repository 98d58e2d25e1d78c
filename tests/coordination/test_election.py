"""Leader election on each live coordination server, claims per fire, and the settings and
API of several replicas (the 3-process tests are in tests/system/test_replicas.py)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from scheduler_service.coordination import LeaderElection, build_backend
from scheduler_service.errors import ConfigError
from scheduler_service.extensions import db
from scheduler_service.runs.models import Run
from scheduler_service.runs.recorder import Fire, claim_many
from tests.support.backends import service_url
from tests.support.credentials import ADMIN
from tests.support.databases import dispose, fresh_database
from tests.support.replicas import COORDINATION, drop_group
from tests.support.waiting import wait_for

LEASE = 3.0


def elections(backend: str, count: int, group: str) -> list[LeaderElection]:
    variable, url = COORDINATION[backend]
    return [
        LeaderElection(
            build_backend(
                url(service_url(variable), group),
                name=group,
                replica_id=f"replica-{i}",
                lease=LEASE,
            )
        )
        for i in range(count)
    ]


@pytest.fixture(params=sorted(COORDINATION))
def pair(request: pytest.FixtureRequest) -> Iterator[list[LeaderElection]]:
    group = f"scheduler-test-{secrets.token_hex(4)}"
    started = elections(request.param, 2, group)
    for election in started:
        election.start()
    yield started
    # Side by side: each stop joins listener threads that poll once a second.
    stopping = [threading.Thread(target=election.stop) for election in started]
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()
    drop_group(request.param, group)


def sole_leader(group: list[LeaderElection]) -> LeaderElection:
    def one() -> LeaderElection | None:
        leaders = [e for e in group if e.is_leader]
        if len(leaders) != 1:
            return None
        agreed = all(e.leader_id() == leaders[0].replica_id for e in group)
        return leaders[0] if agreed else None

    return wait_for(one, timeout=3 * LEASE, what="one leader all agree on")


@pytest.mark.services
def test_one_leader_then_the_other_when_it_steps_down(pair: list[LeaderElection]) -> None:
    leader = sole_leader(pair)
    follower = next(e for e in pair if e is not leader)
    assert 0 < leader.lease_remaining <= LEASE
    assert follower.lease_remaining is None and not follower.is_leader

    leader.contend = False  # as POST /scheduler/pause does
    assert not leader.is_leader
    wait_for(lambda: follower.is_leader, timeout=2 * LEASE, what="the follower leads")
    assert sole_leader(pair) is follower
    assert leader.changes == 2 and follower.changes == 1


@pytest.mark.services
def test_a_stopped_leader_is_replaced_at_once(pair: list[LeaderElection]) -> None:
    leader = sole_leader(pair)
    follower = next(e for e in pair if e is not leader)
    leader.stop()  # releases the lock and announces it
    assert not leader.is_leader
    # Well within the lease: the release is announced, not waited out.
    wait_for(lambda: follower.is_leader, timeout=LEASE / 2, what="the follower leads")


@pytest.mark.services
def test_a_change_announced_by_a_follower_reaches_the_leader(pair: list[LeaderElection]) -> None:
    leader = sole_leader(pair)
    follower = next(e for e in pair if e is not leader)
    heard = threading.Event()
    leader.on_notice = heard.set
    follower.announce()
    assert heard.wait(LEASE), "the leader did not hear the follower's notice"


@pytest.mark.services
def test_an_unreachable_server_means_no_leader_and_an_error() -> None:
    election = LeaderElection(
        build_backend("redis://127.0.0.1:1/0", name="x", replica_id="r", lease=LEASE)
    )
    election.start()
    try:
        wait_for(lambda: election.error, timeout=2 * LEASE, what="an error")
        assert "ConnectionError" in election.error and not election.is_leader
    finally:
        election.stop()


# -- claims: one run per fire, however many processes fire it ------------------------------


class _Job:
    id, name, func_ref, executor = "nightly", "nightly", "jobs.examples:print_test", "default"


def test_a_fire_is_claimed_once_and_a_second_claim_is_a_recorded_duplicate(
    claims_app: Flask,
) -> None:
    first, second = (
        datetime(2026, 1, 1, 3, 0, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 0, 0, 250_000, tzinfo=UTC),
    )
    with claims_app.app_context():
        won = claim_many([Fire(_Job, [first])])[0]
        assert [t for t, _ in won] == [first] and won[0][1] is not None
        # A second replica fires the same time, plus one not claimed yet.
        again = claim_many([Fire(_Job, [first, second])])[0]
        assert [t for t, _ in again] == [second]
        runs = db.session.scalars(db.select(Run).order_by(Run.id)).all()
        assert [(r.state, r.scheduled_run_time) for r in runs] == [
            ("submitted", first),
            ("skipped_duplicate", first),
            ("submitted", second),
        ]
        assert runs[1].error.startswith(f"claimed by run {runs[0].id} ")
        assert runs[1].finished_at is not None
        assert claim_many([Fire(_Job, [second])])[0] == []


def test_a_duplicate_is_counted_in_the_metrics(app: Flask) -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with app.app_context():
        claim_many([Fire(_Job, [when])])[0]
    executor = app.extensions["scheduler_service"].scheduler._lookup_executor("default")
    assert executor.submit_job(_FakeJob(), [when]) == []  # claimed above: not run
    families = {
        f.name: f
        for f in text_string_to_metric_families(
            app.test_client().get("/metrics", headers=ADMIN).text
        )
    }
    samples = {
        s.labels.get("outcome"): s.value
        for s in families["scheduler_runs"].samples
        if s.name == "scheduler_runs_total"
    }
    assert samples["skipped_duplicate"] == 1


class _FakeJob(_Job):
    max_instances = 1
    _jobstore_alias = "default"


# -- settings and API ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SCHEDULER_COORDINATION": "etcd://x"}, "SCHEDULER_COORDINATION: expected none"),
        (
            {
                "SCHEDULER_COORDINATION": "redis://127.0.0.1:1/0",
                "SCHEDULER_JOBSTORE_URL": "memory://",
            },
            "job store 'default' is in memory",
        ),
        ({"SCHEDULER_COORDINATION_LEASE": 0.5}, "SCHEDULER_COORDINATION_LEASE"),
    ],
)
def test_bad_coordination_settings_stop_start_up_naming_the_key(
    make_app: Callable[..., Flask], overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_app(**overrides)


def test_a_single_process_reports_itself_as_the_leader(make_app: Callable[..., Flask]) -> None:
    app = make_app(SCHEDULER_START_PAUSED=False, SCHEDULER_REPLICA_ID="solo")
    info = app.test_client().get("/scheduler", headers=ADMIN).get_json()
    assert {k: info[k] for k in ("replica_id", "role", "coordination", "leader_id")} == {
        "replica_id": "solo",
        "role": "leader",
        "coordination": "none",
        "leader_id": "solo",
    }
    assert info["lease_remaining_s"] is None and info["firing"] is True
    ready = app.test_client().get("/readyz").get_json()
    assert ready["role"] == "leader" and "coordination" not in ready["checks"]


@pytest.mark.services
def test_a_replica_reports_its_role_and_the_coordination_check(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    with fresh_database("TEST_POSTGRES_URL") as url:
        app = make_app(
            SCHEDULER_JOBSTORE_URL=url,
            SCHEDULER_DATABASE_URL=url,
            SCHEDULER_COORDINATION=service_url("TEST_REDIS_URL"),
            SCHEDULER_COORDINATION_NAME=f"scheduler-test-{secrets.token_hex(4)}",
            SCHEDULER_START_PAUSED=False,
        )
        client = app.test_client()
        info = wait_for(
            lambda: (
                (i := client.get("/scheduler", headers=ADMIN).get_json())["role"] == "leader" and i
            ),
            timeout=10,
            what="the only replica leads",
        )
        assert info["coordination"] == "redis" and info["leader_id"] == info["replica_id"]
        ready = client.get("/readyz").get_json()
        assert ready["checks"]["coordination"] == "ok" and ready["role"] == "leader"
        metrics = client.get("/metrics", headers=ADMIN).text
        assert "scheduler_leader 1.0" in metrics
        assert "scheduler_leadership_changes_total 1.0" in metrics
        app.extensions["scheduler_service"].shutdown(wait=True)
        dispose(app)
