"""The scheduler's processing pass: APScheduler 3's, in three phases, fenced for replicas.

APScheduler's ``BaseScheduler._process_jobs`` submits each due job and writes it back to
its store one at a time (a transaction or round trip a job). This pass keeps its logic
(run times, coalescing, max_instances, events) and changes four things:

- three phases per store: work out every due job's run times; claim all their fires in
  one write per executor (``claim_many``) and submit each job; then move every job's next
  run time on, or remove it, in one write (``stores.write_back``);
- no pass after shutdown: APScheduler wakes its thread on shutdown and processes jobs once
  more on the closed stores; SQL and Redis stores reconnect, so every due run would be moved
  on without running;
- a store's due jobs are claimed only while ``may_fire()`` holds, checked just before: a
  replica whose leadership lapsed leaves them to the new leader (it neither runs them nor
  moves their next run time on). Once claimed, fires are submitted and written back: the
  claim is the commitment, a few milliseconds inside the fence's margin;
- with ``recheck`` set, the wait between passes is at most that many seconds, so a change
  made through another replica is seen even if its notice was lost.

If the write-back fails (the store went away mid-pass), the jobs keep their old run time
and the pass is tried again after ``jobstore_retry_interval``; their fires are claimed
already, so they are not run twice (the second claim is recorded ``skipped_duplicate``).
If the claim itself fails (the service database is unreachable), nothing is submitted or
written back: the fires wait for the database, and are then run or recorded missed.

The ledger: every due instant of a job is recorded. With coalescing, the instants folded
into the run are recorded ``coalesced`` (the newest ``LEDGER_LIMIT``; APScheduler would list
every missed instant of a job whose next run time lies years back, so the list is cut there
and the run is the newest instant listed). Instants due before this replica began firing
(a failover, a restart, a pause) are flagged ``no_leader``.

Pending runs (retries, manual runs: rows in the service database) are taken here too, by
the firing leader only: retries wait while the scheduler is paused, manual runs do not.

(Over 300 lines: the pass's phases share one pass's state and APScheduler's private
hooks, and read best in one place.)

Size: one subclass of APScheduler's scheduler whose three phases share the pass's state; split
across modules they would pass that state back and forth.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_REMOVED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_STOPPED, TIMEOUT_MAX

from ..runs.requests import PENDING_BATCH
from ..scheduler.upstream import store_alias
from ..stores import write_back
from .lifecycle import Fire, HistoryUnavailable, RunLifecycle

log = logging.getLogger(__name__)
LEDGER_LIMIT = 100  # due instants of one job listed (and recorded) per pass at most
# Seconds between two reads of the pending runs at most, whatever wakes the pass: a safety
# net for a request announced by a notice that was lost, or made by a process that cannot
# announce it (several processes sharing the database without coordination).
REQUEST_POLL = 5.0


def _always() -> bool:
    return True


def _is_retry(run: Any) -> bool:
    """Whether a pending run is a retry (or a scheduled fire), not an operator's request."""
    return run.attempt > 1 or run.trigger != "manual"


@dataclass
class _Fire:
    """One due job of a pass: its executor, its run times, the instants coalesced into the
    last one, and the fires claimed for it."""

    job: Job
    executor: Any
    run_times: list[datetime]
    coalesced: list[datetime]
    next_run: datetime | None
    claimed: list[tuple[datetime, int | None]] | None = None


def due_run_times(
    job: Job, now: datetime, *, limit: int = LEDGER_LIMIT
) -> tuple[list[datetime], datetime | None]:
    """The instants at which ``job`` fell due by ``now`` (at most ``limit``, the newest),
    and its first instant after ``now`` (None: it has no more).

    APScheduler's ``Job._get_run_times`` lists them all: an hourly job whose next run time
    lies in the year 1 holds the scheduler for minutes and gigabytes. Here, past ``limit``
    instants the walk jumps to about ``limit`` spacings before ``now`` (triggers find their
    next instant after any time) and goes on from there: bounded work for any input.
    """
    trigger = job.trigger
    run_times: list[datetime] = []
    next_run = job.next_run_time
    jumped = False
    while next_run and next_run <= now:
        run_times.append(next_run)
        if len(run_times) == limit and not jumped:
            jumped = True
            spacing = (run_times[-1] - run_times[0]) / (limit - 1)
            try:
                resume_at = now - spacing * limit
            except OverflowError:  # before the year 1: few instants are left, walk them
                resume_at = next_run
            if spacing and resume_at > next_run:
                log.warning(
                    "job %s fell due more than %d times since %s: only the newest are listed",
                    job.id,
                    limit,
                    run_times[0],
                )
                following = trigger.get_next_fire_time(None, resume_at)
                if following is not None and following > next_run:
                    next_run = following
                    continue
        next_run = trigger.get_next_fire_time(next_run, now)
    return run_times[-limit:], next_run


class FencedScheduler(BackgroundScheduler):
    """A background scheduler that fires only while ``may_fire()`` holds."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.may_fire: Callable[[], bool] = _always
        self.recheck: float | None = None
        self.lifecycle: RunLifecycle | None = None  # set when bound to the service's app
        self.firing_since: datetime | None = None  # when this process began to fire
        self._requests_read = 0.0  # monotonic time of the last read of the pending runs
        self._next_request: datetime | None = None  # when the next known one falls due
        # Monotonic time the last pass ended: a pass runs at least every REQUEST_POLL (or
        # recheck) seconds, so a loop stuck in a store call shows (see health.py).
        self.last_pass = time.monotonic()

    def _main_loop(self) -> None:
        self.last_pass = time.monotonic()  # the loop starts now, not when this was built
        super()._main_loop()

    def _process_jobs(self) -> float | None:
        try:
            return self._one_pass()
        finally:
            self.last_pass = time.monotonic()

    def _one_pass(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        if not self.may_fire():
            self.firing_since = None
            return self.recheck  # a follower: woken when elected
        now = datetime.now(self.timezone)
        events: list[JobEvent] = []
        next_wakeup = self._take_requests(now, events, paused=self.state == STATE_PAUSED)
        if self.state == STATE_PAUSED:
            self.firing_since = None
            for event in events:
                self._dispatch_event(event)
            return self._wait_seconds(next_wakeup)
        if self.firing_since is None:
            self.firing_since = now
        with self._jobstores_lock:
            for alias, jobstore in self._jobstores.items():
                try:
                    due_jobs = jobstore.get_due_jobs(now)
                except Exception as exc:
                    self._logger.warning("Error getting due jobs from job store %r: %s", alias, exc)
                    next_wakeup = self._retry_by(now, next_wakeup)
                    continue
                fires = self._prepare(due_jobs, alias, now)
                if fires and not self.may_fire():  # deposed: leave them to the new leader
                    return self.recheck
                try:
                    self._submit_all(fires, alias, events)
                except HistoryUnavailable as exc:
                    self._logger.warning("Fires of job store %r wait: %s", alias, exc)
                    next_wakeup = self._retry_by(now, next_wakeup)
                    continue
                try:
                    self._write_back(fires, alias, jobstore, now, events)
                except Exception as exc:
                    self._logger.error(
                        "Error storing the next run times of %d jobs in job store %r: %s",
                        len(fires),
                        alias,
                        exc,
                    )
                    next_wakeup = self._retry_by(now, next_wakeup)
                    continue
                store_next = jobstore.get_next_run_time()
                if store_next is not None and (next_wakeup is None or store_next < next_wakeup):
                    next_wakeup = store_next.astimezone(self.timezone)
        for event in events:
            self._dispatch_event(event)
        return self._wait_seconds(next_wakeup)

    def _take_requests(
        self, now: datetime, events: list[JobEvent], *, paused: bool
    ) -> datetime | None:
        """Submit the pending runs that are due (only manual ones while paused); return when
        the next one falls due."""
        lifecycle = self.lifecycle
        if lifecycle is None:
            return None
        read_at = time.monotonic()
        if not (
            lifecycle.requests_changed
            or lifecycle.deferred
            or read_at - self._requests_read >= REQUEST_POLL
            or (self._next_request is not None and self._next_request <= now)
        ):
            return self._next_request
        lifecycle.requests_changed = False  # before the read: a request made during it is seen
        self._requests_read = read_at
        retry = now + timedelta(seconds=self.jobstore_retry_interval)
        try:
            due, following = lifecycle.due_requests(now)
        except Exception as exc:
            self._logger.warning("Could not read the pending runs: %s", exc)
            lifecycle.requests_changed = True
            return retry
        if lifecycle.deferred:  # retries the database did not take: try again soon
            following = retry if following is None else min(following, retry)
        if len(due) == PENDING_BATCH:  # more are due than one read takes: read again at once
            lifecycle.requests_changed = True
        for run in due:
            if paused and _is_retry(run):
                lifecycle.requests_changed = True  # read again on resume
                continue  # a retry waits while the scheduler is paused
            try:
                self._submit_request(run, events)
            except Exception:
                self._logger.exception(
                    "Could not submit pending run %d of job %s", run.id, run.job_id
                )
        self._next_request = following
        return following

    def _submit_request(self, run: Any, events: list[JobEvent]) -> None:
        """Take one pending run and hand it to its job's executor."""
        assert self.lifecycle is not None
        job = self.get_job(run.job_id)
        if job is None:
            self.lifecycle.cancel(run, reason="not run: the job was removed")
            return
        if job.next_run_time is None and _is_retry(run):
            self.lifecycle.cancel(run, reason="not retried: the job is paused")
            return
        if not self.lifecycle.take(run.id):
            return  # taken or cancelled meanwhile
        executor = self._lookup_executor(job.executor)
        claimed = [(run.scheduled_run_time, run.id)]
        try:
            executor.submit_job(
                job,
                [run.scheduled_run_time],
                run.trigger,
                run.attempt,
                claimed=claimed,
                due=run.not_before,
            )
        except MaxInstancesReachedError:
            events.append(
                JobSubmissionEvent(
                    EVENT_JOB_MAX_INSTANCES, job.id, store_alias(job), [run.scheduled_run_time]
                )
            )

    def _retry_by(self, now: datetime, next_wakeup: datetime | None) -> datetime:
        """The next wake-up once a store has failed: at most jobstore_retry_interval away."""
        retry = now + timedelta(seconds=self.jobstore_retry_interval)
        return retry if next_wakeup is None else min(next_wakeup, retry)

    def _prepare(self, due_jobs: list[Job], alias: str, now: datetime) -> list[_Fire]:
        """Phase one, without side effects but for jobs with an unknown executor: what each
        due job is to run."""
        fires = []
        for job in due_jobs:
            try:
                executor = self._lookup_executor(job.executor)
            except BaseException:
                self._logger.error(
                    'Executor lookup ("%s") failed for job "%s" -- removing it from the job store',
                    job.executor,
                    job,
                )
                self.remove_job(job.id, alias)
                continue
            run_times, next_run = due_run_times(job, now)
            if not run_times:
                continue
            if job.coalesce:
                fires.append(_Fire(job, executor, run_times[-1:], run_times[:-1], next_run))
            else:
                fires.append(_Fire(job, executor, run_times, [], next_run))
        return fires

    def _submit_all(self, fires: list[_Fire], alias: str, events: list[JobEvent]) -> None:
        """Phase two: claim every fire in one write per executor, then submit each job."""
        groups: dict[int, list[_Fire]] = {}
        for fire in fires:
            if hasattr(fire.executor, "claim_many"):
                groups.setdefault(id(fire.executor), []).append(fire)
        for group in groups.values():
            claims = group[0].executor.claim_many(
                [Fire(f.job, f.run_times, f.coalesced, self.firing_since) for f in group]
            )
            for fire, claimed in zip(group, claims, strict=True):
                fire.claimed = claimed
        for fire in fires:
            job = fire.job
            try:
                if fire.claimed is None:
                    fire.executor.submit_job(job, fire.run_times)
                else:
                    fire.executor.submit_job(job, fire.run_times, claimed=fire.claimed)
            except MaxInstancesReachedError:
                self._logger.warning(
                    'Execution of job "%s" skipped: maximum number of running instances '
                    "reached (%d)",
                    job,
                    job.max_instances,
                )
                events.append(
                    JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, job.id, alias, fire.run_times)
                )
            except BaseException:
                self._logger.exception(
                    'Error submitting job "%s" to executor "%s"', job, job.executor
                )
            else:
                events.append(
                    JobSubmissionEvent(EVENT_JOB_SUBMITTED, job.id, alias, fire.run_times)
                )

    def _write_back(
        self, fires: list[_Fire], alias: str, jobstore: Any, now: datetime, events: list[JobEvent]
    ) -> None:
        """Phase three: move every fired job's next run time on, or remove it, in one write."""
        updated: list[Job] = []
        removed: list[str] = []
        for fire in fires:
            if fire.next_run:
                fire.job._modify(next_run_time=fire.next_run)
                updated.append(fire.job)
            else:
                removed.append(fire.job.id)
        write_back(jobstore, updated, removed)
        events.extend(JobEvent(EVENT_JOB_REMOVED, job_id, alias) for job_id in removed)

    def _wait_seconds(self, next_wakeup: datetime | None) -> float | None:
        wait = REQUEST_POLL if self.lifecycle is not None else None
        if next_wakeup is not None:
            now = datetime.now(self.timezone)
            until = min(max(next_wakeup.timestamp() - now.timestamp(), 0), TIMEOUT_MAX)
            wait = until if wait is None else min(wait, until)
        if self.recheck is not None:
            wait = self.recheck if wait is None else min(wait, self.recheck)
        return wait
