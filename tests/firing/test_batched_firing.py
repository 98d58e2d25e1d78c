"""The batched firing path (scheduler/loop.py): a burst of fires is claimed in one write,
each fire runs exactly once, and every store is written back in one go; then the parts on
their own: ``write_back`` per store, ``claim_many`` per database, and a claimed fire that
max_instances refuses."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_REMOVED
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import STATE_PAUSED
from flask import Flask

from scheduler_service.extensions import db
from scheduler_service.firing.loop import FencedScheduler
from scheduler_service.runs.models import FINAL_STATES, Run
from scheduler_service.runs.recorder import Fire, claim_many
from scheduler_service.stores import build_jobstore, write_back
from tests.app_jobs import GATES
from tests.live_stores import Live, stop
from tests.support.api import add_job as add
from tests.support.credentials import ADMIN, OPERATOR
from tests.support.runs import stand_in_job
from tests.support.waiting import wait_for

DATE_JOBS, INTERVAL_JOBS = 100, 50
INTERVAL = timedelta(hours=1)


def user_runs(app: Flask) -> list[Run]:
    """Every run of the test's jobs (not the service's own "__" jobs), as stored."""
    with app.app_context():
        runs = db.session.scalars(db.select(Run).order_by(Run.id)).all()
        db.session.expunge_all()
    return [run for run in runs if not run.job_id.startswith("__")]


# -- a burst on every store ---------------------------------------------------------------


@dataclass
class Burst:
    """What a burst scheduled, and the jobs the scheduler announced as removed."""

    at: datetime
    date_ids: list[str]
    interval_ids: list[str]
    log: Path
    removed: list[str]

    @property
    def job_ids(self) -> list[str]:
        return self.date_ids + self.interval_ids


def fire_burst(app: Flask, log: Path) -> Burst:
    """Schedule date and interval jobs all due at one instant, resume the scheduler, and
    wait until every fire has finished and the pass has written back.

    The scheduler is paused while the jobs are added, and each job's ``next_run_time`` is
    that instant (its trigger starts a day later): the current whole second, so that all are
    due by the time the scheduler resumes and fire at once, late by the time it took to add
    them (well within the 60 s of grace), on a fast machine or a slow one; no lead to wait for."""
    client = app.test_client()
    removed: list[str] = []
    scheduler = app.extensions["scheduler_service"].scheduler
    scheduler.add_listener(lambda event: removed.append(event.job_id), EVENT_JOB_REMOVED)
    at = datetime.now(UTC).replace(microsecond=0)
    burst = Burst(
        at,
        [f"date{i:03d}" for i in range(DATE_JOBS)],
        [f"every{i:03d}" for i in range(INTERVAL_JOBS)],
        log,
        removed,
    )
    later = (at + timedelta(days=1)).isoformat()
    common = {"func": "jobs.examples:record", "next_run_time": at.isoformat()}
    assert app.extensions["scheduler_service"].state == STATE_PAUSED
    for job_id in burst.date_ids:
        body = {**common, "id": job_id, "args": [str(log), job_id], "trigger": "date"}
        job = add(client, {**body, "run_date": later})
        assert datetime.fromisoformat(job["next_run_time"]) == at
    for job_id in burst.interval_ids:
        body = {**common, "id": job_id, "args": [str(log), job_id], "trigger": "interval"}
        job = add(client, {**body, "hours": 1, "start_date": later})
        assert datetime.fromisoformat(job["next_run_time"]) == at
    assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204

    def finished() -> bool:
        response = client.get("/scheduler/runs?limit=1000", headers=ADMIN)
        runs = [r for r in response.get_json() if not r["job_id"].startswith("__")]
        return sum(r["state"] in FINAL_STATES for r in runs) >= len(burst.job_ids)

    def states() -> str:
        return f"run states: {Counter(run.state for run in user_runs(app))}"

    wait_for(finished, timeout=30, what="every fire of the burst finished", details=states)
    wait_for(
        lambda: len(removed) >= DATE_JOBS,
        timeout=10,
        what="the pass announced the removal of every date job",
        details=lambda: f"{len(removed)} removed",
    )
    return burst


def assert_every_fire_ran_once(app: Flask, burst: Burst) -> None:
    runs = user_runs(app)
    fires = Counter((run.job_id, run.scheduled_run_time) for run in runs)
    assert set(fires) == {(job_id, burst.at) for job_id in burst.job_ids}  # none missing
    assert [fire for fire, count in fires.items() if count != 1] == []  # none twice
    assert Counter(run.state for run in runs) == {"succeeded": len(burst.job_ids)}
    assert all(run.claim is True for run in runs)
    assert all(run.trigger == "schedule" and run.attempt == 1 for run in runs)
    # one multi-row INSERT claimed them all, at one moment
    assert len({run.submitted_at for run in runs}) == 1
    ran = Counter(line.split(" ")[-1] for line in burst.log.read_text().splitlines())
    assert ran == Counter(burst.job_ids)
    assert sorted(burst.removed) == burst.date_ids


def assert_store_moved_on(app: Flask, burst: Burst) -> None:
    """Through ``app``'s scheduler: the date jobs are gone, the interval jobs moved on."""
    scheduler = app.extensions["scheduler_service"].scheduler
    jobs = {job.id: job for job in scheduler.get_jobs(jobstore="default")}
    assert sorted(jobs) == burst.interval_ids
    assert {job.next_run_time for job in jobs.values()} == {burst.at + INTERVAL}
    assert all(scheduler.get_job(job_id) is None for job_id in burst.date_ids)
    listing = app.test_client().get("/scheduler/jobs", headers=ADMIN)
    assert int(listing.headers["X-Total-Count"]) == INTERVAL_JOBS


@pytest.mark.services
def test_a_burst_fires_each_job_once_and_writes_the_store_back(
    store_app: Callable[..., Flask], live_store: Live, tmp_path: Path
) -> None:
    app = store_app()
    burst = fire_burst(app, tmp_path / "burst.log")
    assert_every_fire_ran_once(app, burst)
    assert_store_moved_on(app, burst)
    assert [job_id for job_id in burst.date_ids if live_store.holds(job_id)] == []
    assert all(live_store.holds(job_id) for job_id in burst.interval_ids)
    stop(app)

    # A fresh app on the same store unpickles what the write-back stored.
    fresh = store_app()
    assert_store_moved_on(fresh, burst)
    scheduler = fresh.extensions["scheduler_service"].scheduler
    for job_id in burst.interval_ids:
        job = scheduler.get_job(job_id)
        assert job.trigger.interval == INTERVAL
        assert (job.func_ref, job.args) == ("jobs.examples:record", (str(burst.log), job_id))


def test_a_burst_on_the_memory_store(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(SCHEDULER_JOBSTORE_URL="memory://")
    burst = fire_burst(app, tmp_path / "burst.log")
    assert_every_fire_ran_once(app, burst)
    assert_store_moved_on(app, burst)


# -- write_back on each store ---------------------------------------------------------------

BEFORE = datetime(2031, 1, 1, 3, 0, tzinfo=UTC)
AFTER = datetime(2031, 6, 1, 3, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
UPDATED, REMOVED, GONE = ("w0", "w1", "w2"), ("w3", "w4"), "w5"  # GONE: removed meanwhile


@contextmanager
def opened(store: Any) -> Iterator[Any]:
    """Start ``store`` in a paused scheduler of its own, as a replica's; shut it after."""
    scheduler = FencedScheduler(jobstores={"default": store}, timezone=UTC)
    scheduler.start(paused=True)
    try:
        yield store
    finally:
        scheduler.shutdown(wait=False)


def write_back_a_pass(store: Any, remove_elsewhere: Callable[[str], None]) -> None:
    """Store six jobs; then write back what a pass would: three moved on (new run time and
    args), two finished, and one moved on that someone else removed meanwhile."""
    scheduler = store._scheduler
    for i in range(6):
        scheduler.add_job(
            "jobs.examples:print_test",
            "interval",
            hours=1,
            id=f"w{i}",
            args=[f"before {i}"],
            next_run_time=BEFORE + i * MINUTE,
        )
    jobs = {job.id: job for job in store.get_all_jobs()}
    assert sorted(jobs) == [f"w{i}" for i in range(6)]
    for i, job_id in enumerate((*UPDATED, GONE)):
        jobs[job_id]._modify(next_run_time=AFTER - i * MINUTE, args=[f"after {i}"])
    remove_elsewhere(GONE)
    write_back(store, [jobs[job_id] for job_id in (*UPDATED, GONE)], list(REMOVED))


def assert_written_back(store: Any) -> None:
    assert sorted(job.id for job in store.get_all_jobs()) == list(UPDATED)
    for i, job_id in enumerate(UPDATED):
        job = store.lookup_job(job_id)
        assert (job.next_run_time, list(job.args)) == (AFTER - i * MINUTE, [f"after {i}"])
    assert [store.lookup_job(job_id) for job_id in (*REMOVED, GONE)] == [None, None, None]
    # the run-time index moved too: nothing is due before the new times, in their order
    assert store.get_next_run_time() == AFTER - 2 * MINUTE
    assert store.get_due_jobs(AFTER - 3 * MINUTE) == []
    assert [job.id for job in store.get_due_jobs(AFTER - MINUTE)] == ["w2", "w1"]


def no_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.services
def test_write_back_round_trips_on_each_store(
    live_store: Live, caplog: pytest.LogCaptureFixture
) -> None:
    def remove_elsewhere(job_id: str) -> None:
        with opened(build_jobstore("default", live_store.url)) as other:
            other.remove_job(job_id)

    with opened(build_jobstore("default", live_store.url)) as store:
        write_back_a_pass(store, remove_elsewhere)
    assert [live_store.holds(f"w{i}") for i in range(6)] == [True] * 3 + [False] * 3
    with opened(build_jobstore("default", live_store.url)) as fresh:
        assert_written_back(fresh)
    assert no_warnings(caplog) == []


def test_write_back_on_the_memory_store(caplog: pytest.LogCaptureFixture) -> None:
    with opened(MemoryJobStore()) as store:
        write_back_a_pass(store, store.remove_job)
        assert_written_back(store)
    assert no_warnings(caplog) == []


# -- claim_many on each run-history database ------------------------------------------------

FIRST, SECOND, THIRD = (datetime(2030, 1, 1, 3, 0, tzinfo=UTC) + n * MINUTE for n in range(3))


def claimed_row(job_id: str, when: datetime) -> Run:
    return Run(
        job_id=job_id,
        trigger="schedule",
        state="submitted",
        attempt=1,
        scheduled_run_time=when,
        claim=True,
        host="elsewhere",
        pid=1,
    )


def assert_claims_recorded(fires: list, claimed: list) -> dict[int, Run]:
    """Each returned id is the claimed, submitted row of its own (job, time)."""
    rows = {run.id: run for run in db.session.scalars(db.select(Run))}
    for fire, won in zip(fires, claimed, strict=True):
        for when, run_id in won:
            row = rows[run_id]
            assert (row.job_id, row.scheduled_run_time, row.state, row.claim) == (
                fire.job.id,
                when,
                "submitted",
                True,
            )
    return rows


def test_claim_many_claims_every_fire_in_order(claims_app: Flask) -> None:
    jobs = [stand_in_job(f"job{i:02d}") for i in range(40)]
    fires = [Fire(job, [FIRST, SECOND] if i % 2 else [THIRD]) for i, job in enumerate(jobs)]
    with claims_app.app_context():
        claimed = claim_many(fires)
        assert [[when for when, _ in won] for won in claimed] == [f.run_times for f in fires]
        ids = [run_id for won in claimed for _, run_id in won]
        assert None not in ids and len(set(ids)) == 60
        rows = assert_claims_recorded(fires, claimed)
        assert len(rows) == 60


def test_claim_many_matches_each_id_to_its_fire_whatever_the_timezone(claims_app: Flask) -> None:
    # the database returns the ids in no promised order, with its times in UTC; the fires
    # come with the scheduler's timezone
    paris = ZoneInfo("Europe/Paris")
    jobs = [stand_in_job(f"tz{i:02d}") for i in range(30)]
    seconds = [(FIRST + i * MINUTE / 60).astimezone(paris) for i in range(30)]
    fires = [Fire(job, [seconds[i], THIRD]) for i, job in enumerate(jobs)]
    with claims_app.app_context():
        claimed = claim_many(fires)
        assert [[when for when, _ in won] for won in claimed] == [f.run_times for f in fires]
        rows = assert_claims_recorded(fires, claimed)
        assert len(rows) == 60


def test_claim_many_skips_a_fire_claimed_elsewhere_and_claims_the_rest(
    claims_app: Flask,
) -> None:
    a, b, c = stand_in_job("a"), stand_in_job("b"), stand_in_job("c")
    fires = [Fire(a, [FIRST, SECOND]), Fire(b, [FIRST, SECOND]), Fire(c, [THIRD])]
    with claims_app.app_context():
        taken = claimed_row("b", FIRST)
        db.session.add(taken)
        db.session.commit()
        taken_id = taken.id

        claimed = claim_many(fires)
        won_times = [[when for when, _ in won] for won in claimed]
        assert won_times == [[FIRST, SECOND], [SECOND], [THIRD]]
        ids = [run_id for won in claimed for _, run_id in won]
        assert None not in ids and len(set(ids)) == 4 and taken_id not in ids
        rows = assert_claims_recorded(fires, claimed)
        duplicates = [run for run in rows.values() if run.state == "skipped_duplicate"]
        assert [(run.job_id, run.scheduled_run_time) for run in duplicates] == [("b", FIRST)]
        assert duplicates[0].error.startswith(f"claimed by run {taken_id} (replica elsewhere")
        assert duplicates[0].claim is None and duplicates[0].finished_at is not None
        assert len(rows) == 1 + 4 + 1


def test_claim_many_tells_job_ids_apart_exactly(claims_app: Flask) -> None:
    """MariaDB's default collation ignores case and trailing spaces: `Nightly` and `nightly`
    claimed one fire between them (the other was recorded skipped_duplicate and never ran)."""
    ids = ("Nightly", "nightly", "NIGHTLY", "a", "a ")  # "a " is stored by older releases only
    fires = [Fire(stand_in_job(job_id), [FIRST]) for job_id in ids]
    with claims_app.app_context():
        claimed = claim_many(fires)
        assert [[when for when, _ in won] for won in claimed] == [[FIRST]] * len(ids)
        rows = db.session.scalars(db.select(Run)).all()
        assert sorted((run.job_id, run.state) for run in rows) == sorted(
            (job_id, "submitted") for job_id in ids
        )
        one = db.session.scalars(db.select(Run.job_id).where(Run.job_id == "nightly")).all()
        assert one == ["nightly"]


def test_claim_many_records_the_coalesced_instants_of_a_fire(claims_app: Flask) -> None:
    # a job due at FIRST, SECOND and THIRD, coalesced: one run for THIRD, two ledger rows
    # pointing at it; the instants before the replica began firing are flagged no_leader
    job, other = stand_in_job("co"), stand_in_job("plain")
    fires = [Fire(job, [THIRD], [FIRST, SECOND], firing_since=SECOND), Fire(other, [SECOND])]
    with claims_app.app_context():
        claimed = claim_many(fires)
        run_id = claimed[0][0][1]
        rows = db.session.scalars(db.select(Run).where(Run.job_id == "co")).all()
        by_time = {row.scheduled_run_time: row for row in rows}
        assert {t: r.state for t, r in by_time.items()} == {
            FIRST: "coalesced",
            SECOND: "coalesced",
            THIRD: "submitted",
        }
        assert by_time[FIRST].coalesced_into == by_time[SECOND].coalesced_into == run_id
        assert [by_time[t].no_leader for t in (FIRST, SECOND, THIRD)] == [True, False, False]
        assert all(r.claim for r in rows) and by_time[FIRST].finished_at is not None
        # a second replica finds every instant claimed: nothing won, nothing coalesced again
        again = claim_many([Fire(job, [THIRD], [FIRST, SECOND])])
        assert again == [[]]
        states = sorted(
            r.state for r in db.session.scalars(db.select(Run).where(Run.job_id == "co"))
        )
        assert states == ["coalesced", "coalesced", "skipped_duplicate", "submitted"]


# -- a claimed fire that max_instances refuses ----------------------------------------------


def test_a_claimed_fire_refused_by_max_instances_is_recorded_skipped(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(SCHEDULER_ALLOWED_MODULES=["jobs", "tests.app_jobs"])
    client = app.test_client()
    gate = f"held-{uuid.uuid4().hex}"
    GATES[gate] = threading.Event()
    add(
        client,
        {
            "id": "held",
            "func": "tests.app_jobs:wait_at_gate",
            "args": [gate],
            "trigger": "interval",
            "hours": 1,
            "max_instances": 1,
        },
    )
    scheduler = app.extensions["scheduler_service"].scheduler
    refused: list[Any] = []
    scheduler.add_listener(refused.append, EVENT_JOB_MAX_INSTANCES)

    def run(run_id: int) -> dict:
        return client.get(f"/scheduler/runs/{run_id}", headers=ADMIN).get_json()

    try:
        manual = client.post("/scheduler/jobs/held/run", headers=OPERATOR)
        assert manual.status_code == 202
        manual_id = manual.get_json()["id"]
        wait_for(lambda: run(manual_id)["state"] == "running", what="the manual run holds")

        due = datetime.now(UTC).replace(microsecond=0)
        scheduler.modify_job("held", next_run_time=due)
        assert client.post("/scheduler/resume", headers=OPERATOR).status_code == 204
        wait_for(lambda: refused, what="the scheduled fire is refused")
        assert refused[0].scheduled_run_times == [due]

        def scheduled() -> list[Run]:
            return [run for run in user_runs(app) if run.trigger == "schedule"]

        wait_for(
            lambda: scheduled() and scheduled()[0].state != "submitted",
            timeout=5,
            what="the refused fire's run leaves 'submitted'",
            details=lambda: str([(r.id, r.state) for r in scheduled()]),
        )
        [skipped] = scheduled()
        assert (skipped.state, skipped.scheduled_run_time, skipped.claim) == ("skipped", due, True)
        assert skipped.finished_at is not None
        assert scheduler.get_job("held").next_run_time == due + INTERVAL  # moved on all the same
    finally:
        GATES.pop(gate).set()
    wait_for(lambda: run(manual_id)["state"] == "succeeded", what="the manual run ends")
