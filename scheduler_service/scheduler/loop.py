"""The scheduler's processing pass: APScheduler 3's, fenced for several replicas.

Three changes to ``BaseScheduler._process_jobs`` (whose logic this follows line for line
otherwise):

- no pass after shutdown: APScheduler wakes its thread on shutdown and processes jobs once
  more on the closed stores; SQL and Redis stores reconnect, so every due run would be moved
  on without running;
- a job is submitted only while ``may_fire()`` holds, checked before each job: a replica
  whose leadership lapsed mid-pass stops there and leaves the rest for the new leader (it
  neither runs them nor moves their next run time on);
- with ``recheck`` set, the wait between passes is at most that many seconds, so a change
  made through another replica is seen even if its notice was lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_STOPPED, TIMEOUT_MAX


def _always() -> bool:
    return True


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
        events: list[JobSubmissionEvent] = []
        with self._jobstores_lock:
            for alias, jobstore in self._jobstores.items():
                try:
                    due_jobs = jobstore.get_due_jobs(now)
                except Exception as exc:
                    self._logger.warning("Error getting due jobs from job store %r: %s", alias, exc)
                    retry = now + timedelta(seconds=self.jobstore_retry_interval)
                    next_wakeup = retry if next_wakeup is None else min(next_wakeup, retry)
                    continue
                for job in due_jobs:
                    if not self.may_fire():  # deposed mid-pass: leave the rest untouched
                        return self.recheck
                    self._fire(job, alias, jobstore, now, events)
                store_next = jobstore.get_next_run_time()
                if store_next is not None and (next_wakeup is None or store_next < next_wakeup):
                    next_wakeup = store_next.astimezone(self.timezone)
        for event in events:
            self._dispatch_event(event)
        return self._wait_seconds(next_wakeup)

    def _fire(
        self,
        job: Any,
        alias: str,
        jobstore: Any,
        now: datetime,
        events: list[JobSubmissionEvent],
    ) -> None:
        """Submit one due job, then move its next run time on (or remove it)."""
        try:
            executor = self._lookup_executor(job.executor)
        except BaseException:
            self._logger.error(
                'Executor lookup ("%s") failed for job "%s" -- removing it from the job store',
                job.executor,
                job,
            )
            self.remove_job(job.id, alias)
            return
        run_times = job._get_run_times(now)
        run_times = run_times[-1:] if run_times and job.coalesce else run_times
        if not run_times:
            return
        try:
            executor.submit_job(job, run_times)
        except MaxInstancesReachedError:
            self._logger.warning(
                'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
                job,
                job.max_instances,
            )
            events.append(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, job.id, alias, run_times))
        except BaseException:
            self._logger.exception('Error submitting job "%s" to executor "%s"', job, job.executor)
        else:
            events.append(JobSubmissionEvent(EVENT_JOB_SUBMITTED, job.id, alias, run_times))
        next_run = job.trigger.get_next_fire_time(run_times[-1], now)
        if next_run:
            job._modify(next_run_time=next_run)
            jobstore.update_job(job)
        else:
            self.remove_job(job.id, alias)

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
