"""The scheduler's processing pass: APScheduler 3's, in three phases, fenced for replicas.

APScheduler's ``BaseScheduler._process_jobs`` submits each due job and writes it back to
its store one at a time (a transaction or round trip a job). This pass keeps its logic
(run times, coalescing, max_instances, events) and changes four things:

- three phases per store: work out every due job's run times; claim all their fires in
  one write per executor (``claim_many``) and submit each job; then move every job's next
  run time on, or remove it, in one write (``writeback.write_back``);
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
"""

from __future__ import annotations

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

from .writeback import write_back


def _always() -> bool:
    return True


@dataclass
class _Fire:
    """One due job of a pass: its executor, its run times, and the fires claimed for it."""

    job: Job
    executor: Any
    run_times: list[datetime]
    claimed: list[tuple[datetime, int | None]] | None = None


class FencedScheduler(BackgroundScheduler):
    """A background scheduler that fires only while ``may_fire()`` holds."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.may_fire: Callable[[], bool] = _always
        self.recheck: float | None = None

    def _process_jobs(self) -> float | None:
        if self.state in (STATE_STOPPED, STATE_PAUSED):
            return None
        if not self.may_fire():
            return self.recheck  # a follower: woken when elected
        now = datetime.now(self.timezone)
        next_wakeup: datetime | None = None
        events: list[JobEvent] = []
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
                self._submit_all(fires, alias, events)
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
            run_times = job._get_run_times(now)
            run_times = run_times[-1:] if run_times and job.coalesce else run_times
            if run_times:
                fires.append(_Fire(job, executor, run_times))
        return fires

    def _submit_all(self, fires: list[_Fire], alias: str, events: list[JobEvent]) -> None:
        """Phase two: claim every fire in one write per executor, then submit each job."""
        groups: dict[int, list[_Fire]] = {}
        for fire in fires:
            if hasattr(fire.executor, "claim_many"):
                groups.setdefault(id(fire.executor), []).append(fire)
        for group in groups.values():
            claims = group[0].executor.claim_many([(f.job, f.run_times) for f in group])
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
            next_run = fire.job.trigger.get_next_fire_time(fire.run_times[-1], now)
            if next_run:
                fire.job._modify(next_run_time=next_run)
                updated.append(fire.job)
            else:
                removed.append(fire.job.id)
        write_back(jobstore, updated, removed)
        events.extend(JobEvent(EVENT_JOB_REMOVED, job_id, alias) for job_id in removed)

    def _wait_seconds(self, next_wakeup: datetime | None) -> float | None:
        if self.state == STATE_PAUSED:
            return None
        wait = None
        if next_wakeup is not None:
            now = datetime.now(self.timezone)
            wait = min(max(next_wakeup.timestamp() - now.timestamp(), 0), TIMEOUT_MAX)
        if self.recheck is not None:
            wait = self.recheck if wait is None else min(wait, self.recheck)
        return wait
