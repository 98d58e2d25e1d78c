"""Executors that record every run (SPEC §6), retry failed ones and enforce timeouts.

The parent side of a run: a run is recorded ``submitted`` when the executor accepts it
(``skipped`` when max_instances refuses it), and handed to a worker (see running.py). When a
run fails and its job's policy allows, a retry of the same fire is submitted after a
backoff; retries are counted apart from the job's instances, so a retry never makes the next
scheduled fire be skipped. On the process executor a job with a timeout runs in a dedicated
child that is terminated when the timeout passes.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import threading
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.executors.pool import ProcessPoolExecutor, ThreadPoolExecutor
from blinker import Namespace

from ..runs.recorder import (
    claim_many,
    record_lost,
    record_skipped,
    record_submitted,
    record_timed_out,
)
from .policy import policy_of
from .pool import WorkerPool
from .running import (
    build_child_app,
    child_settings,
    run_in_app,
    run_in_child_app,
    run_in_dedicated_process,
)

if TYPE_CHECKING:
    from apscheduler.job import Job
    from flask import Flask

__all__ = ["AppProcessPoolExecutor", "AppThreadPoolExecutor", "child_settings"]

log = logging.getLogger(__name__)
EVENTS_KEY = "scheduler_service.events"
# Sent (sender: the app) with job_id and count when fires were claimed by another replica.
duplicate_fire = Namespace().signal("duplicate-fire")


class _RecordingPool:
    """What both pool executors share: recorded submission, outcomes, retries."""

    app: Flask | None = None

    def submit_job(
        self,
        job: Job,
        run_times: list[datetime],
        trigger: str = "schedule",
        attempt: int = 1,
        *,
        claimed: list[tuple[datetime, int | None]] | None = None,
    ) -> list[int | None]:
        """Submit a run per run time; return their run ids.

        ``claimed`` holds the scheduled fires the caller claimed already (see ``claim_many``),
        as (run time, run id) pairs; they replace ``run_times``.

        :raises MaxInstancesReachedError: the job already runs max_instances times (the
            refused runs are recorded as skipped). Retries (attempt > 1) are not refused.
        """
        key = job.id if attempt == 1 else f"{job.id}\0retry"
        if claimed is not None:
            run_times = [t for t, _ in claimed]
        # The lock guards the instance count only: held while a run is recorded or handed
        # to the pool, it would make every finishing worker queue behind a burst of submits.
        with self._lock:  # type: ignore[attr-defined]
            refused = attempt == 1 and self._instances[key] >= job.max_instances  # type: ignore[attr-defined]
            if not refused:
                self._instances[key] += 1  # type: ignore[attr-defined]  # released if not run
        if refused:
            if claimed is None:
                self._record(job, run_times, trigger, "skipped", attempt)
            else:
                self._record_skipped([i for _, i in claimed])
            if trigger == "manual":  # the scheduler reports scheduled ones itself
                self._scheduler._dispatch_event(  # type: ignore[attr-defined]
                    JobSubmissionEvent(
                        EVENT_JOB_MAX_INSTANCES, job.id, job._jobstore_alias, run_times
                    )
                )
            raise MaxInstancesReachedError(job)
        try:
            if trigger == "schedule" and attempt == 1:
                if claimed is None:
                    claimed = self._claim(job, run_times)
                run_times, run_ids = [t for t, _ in claimed], [i for _, i in claimed]
            else:
                run_ids = self._record(job, run_times, trigger, "submitted", attempt)
            if not run_times:  # every one of these fires was claimed by another replica
                self._release(key)
                return []
            # Announced first: a fast job's outcome must not be published before it.
            self._publish_submitted(job, run_times, run_ids, trigger, attempt)
            self._submit(job, run_times, run_ids, key=key, trigger=trigger, attempt=attempt)
        except BaseException:
            self._release(key)
            raise
        return run_ids

    def _release(self, key: str) -> None:
        """Give back an instance reserved for runs that were not submitted."""
        with self._lock:  # type: ignore[attr-defined]
            self._instances[key] -= 1  # type: ignore[attr-defined]
            if not self._instances[key]:  # type: ignore[attr-defined]
                del self._instances[key]  # type: ignore[attr-defined]

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        self._submit(
            job, run_times, [None] * len(run_times), key=job.id, trigger="schedule", attempt=1
        )

    def _record(
        self, job: Job, run_times: list[datetime], trigger: str, state: str, attempt: int
    ) -> list[int | None]:
        ids: list[int | None] = []
        if self.app is not None:
            with self.app.app_context():
                ids = list(
                    record_submitted(
                        job=job, run_times=run_times, trigger=trigger, state=state, attempt=attempt
                    )
                )
        return ids or [None] * len(run_times)

    def _claim(self, job: Job, run_times: list[datetime]) -> list[tuple[datetime, int | None]]:
        """Claim each scheduled fire (exactly once across replicas); return those won."""
        return self.claim_many([(job, run_times)])[0]

    def claim_many(
        self, fires: list[tuple[Job, list[datetime]]]
    ) -> list[list[tuple[datetime, int | None]]]:
        """Claim the scheduled fires of many jobs in one write; for each (job, run times)
        pair, return the (run time, run id) pairs won here."""
        if self.app is None:
            return [[(t, None) for t in run_times] for _, run_times in fires]
        with self.app.app_context():
            claimed = claim_many(fires)
        for (job, run_times), won in zip(fires, claimed, strict=True):
            if len(won) < len(run_times):
                duplicate_fire.send(self.app, job_id=job.id, count=len(run_times) - len(won))
        return claimed

    def _record_skipped(self, run_ids: list[int | None]) -> None:
        if self.app is None:
            return
        with self.app.app_context():
            for run_id in run_ids:
                record_skipped(run_id)

    def _publish_submitted(
        self, job: Job, run_times: list[datetime], run_ids: list, trigger: str, attempt: int
    ) -> None:
        hub = self.app.extensions.get(EVENTS_KEY) if self.app is not None else None
        if hub is None:
            return
        for run_time, run_id in zip(run_times, run_ids, strict=True):
            hub.publish(
                "run.submitted",
                {
                    "job_id": job.id,
                    "run_id": run_id,
                    "attempt": attempt,
                    "scheduled_run_time": run_time,
                    "trigger": trigger,
                },
            )

    def _submit(
        self,
        job: Job,
        run_times: list[datetime],
        run_ids: list,
        *,
        key: str,
        trigger: str,
        attempt: int,
    ) -> None:
        def done(future: Any) -> None:
            exc = future.exception()
            if exc:  # the worker itself failed (e.g. a process-pool child died)
                self._record_lost(run_ids, f"{type(exc).__name__}: {exc}")
                self._run_job_error(key, exc, getattr(exc, "__traceback__", None))  # type: ignore[attr-defined]
                return
            events = future.result()
            self._run_job_success(key, events)  # type: ignore[attr-defined]
            self._retry_failures(job, events, trigger)

        args = (job, job._jobstore_alias, run_times, run_ids, attempt)
        self._pool_submit(job, args).add_done_callback(done)

    def _pool_submit(self, job: Job, args: tuple) -> concurrent.futures.Future:
        raise NotImplementedError

    def _record_lost(self, run_ids: list, reason: str) -> None:
        if self.app is None:
            return
        with self.app.app_context():
            for run_id in run_ids:
                record_lost(run_id, error=reason)

    def _retry_failures(self, job: Job, events: list[JobExecutionEvent], trigger: str) -> None:
        policy = policy_of(job.trigger)
        for event in events:
            attempt = getattr(event, "attempt", 1)
            if event.code != EVENT_JOB_ERROR or attempt > policy.retries:
                continue
            delay = policy.delay(attempt + 1)
            timer = threading.Timer(
                delay, self._retry, args=(job.id, event.scheduled_run_time, trigger, attempt + 1)
            )
            timer.daemon = True
            timer.start()

    def _retry(self, job_id: str, run_time: datetime, trigger: str, attempt: int) -> None:
        """Submit attempt ``attempt`` of one fire, with the job as it is stored now."""
        try:
            job = self._scheduler.get_job(job_id)  # type: ignore[attr-defined]
            if job is None or job.next_run_time is None:
                log.info("not retrying job %s: it was removed or paused", job_id)
                return
            self.submit_job(job, [run_time], trigger=trigger, attempt=attempt)
        except Exception:  # a timer thread: nothing above it would log this
            log.exception("could not submit attempt %d of job %s", attempt, job_id)


class AppThreadPoolExecutor(_RecordingPool, ThreadPoolExecutor):
    """A thread pool whose jobs run, recorded, in the owning app's context."""

    def __init__(self, max_workers: int = 10, pool_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(max_workers, pool_kwargs)
        standard, self._pool = self._pool, WorkerPool(max_workers, **(pool_kwargs or {}))
        standard.shutdown(wait=False)

    def start(self, scheduler: Any, alias: str) -> None:
        # APScheduler keeps a shut-down pool across POST /shutdown then /start: renew it.
        if self._pool._shutdown:
            self._pool = WorkerPool(self._pool._max_workers)
        super().start(scheduler, alias)

    def bind_app(self, app: Flask, settings: dict[str, Any]) -> None:
        """Run and record jobs through ``app`` from now on."""
        self.app = app

    def _pool_submit(self, job: Job, args: tuple) -> concurrent.futures.Future:
        return self._pool.submit(run_in_app, self.app, *args)


class AppProcessPoolExecutor(_RecordingPool, ProcessPoolExecutor):
    """A process pool whose children build a job-only app to run and record jobs."""

    _settings: dict[str, Any] | None = None

    def bind_app(self, app: Flask, settings: dict[str, Any]) -> None:
        """Record submissions through ``app``; give the children ``settings`` for theirs."""
        self.app = app
        self._settings = settings
        self.pool_kwargs.update(initializer=build_child_app, initargs=(settings,))
        idle = self._pool
        self._pool = idle.__class__(idle._max_workers, **self.pool_kwargs)
        idle.shutdown(wait=False)
        self._watchers = concurrent.futures.ThreadPoolExecutor(
            idle._max_workers, thread_name_prefix="timeout-watch"
        )

    def start(self, scheduler: Any, alias: str) -> None:
        # APScheduler keeps a shut-down pool across POST /shutdown then /start: renew it.
        if self._pool._shutdown_thread:
            self._pool = self._pool.__class__(self._pool._max_workers, **self.pool_kwargs)
        watchers = getattr(self, "_watchers", None)
        if watchers is not None and watchers._shutdown:
            self._watchers = concurrent.futures.ThreadPoolExecutor(
                watchers._max_workers, thread_name_prefix="timeout-watch"
            )
        super().start(scheduler, alias)

    def _pool_submit(self, job: Job, args: tuple) -> concurrent.futures.Future:
        timeout = policy_of(job.trigger).timeout
        if timeout is not None and self._settings is not None:
            return self._watchers.submit(self._run_dedicated, timeout, args)
        try:
            return self._pool.submit(run_in_child_app, *args)
        except BrokenProcessPool:  # a child died: start a fresh pool, as APScheduler does
            self._logger.warning("Process pool is broken; replacing pool with a fresh instance")
            self._pool = self._pool.__class__(self._pool._max_workers, **self.pool_kwargs)
            return self._pool.submit(run_in_child_app, *args)

    def _run_dedicated(self, timeout: float, args: tuple) -> list[JobExecutionEvent]:
        """Run in a child of its own; terminate it when ``timeout`` passes."""
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=run_in_dedicated_process, args=(self._settings, send, *args), daemon=True
        )
        child.start()
        send.close()
        child.join(timeout)
        if not child.is_alive():
            with receive:
                try:
                    return receive.recv()
                except EOFError:  # it died before it could report
                    return self._ended(args, f"its process exited with code {child.exitcode}")
        child.terminate()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
        receive.close()
        return self._timed_out(timeout, *args)

    def _timed_out(
        self,
        timeout: float,
        job: Job,
        jobstore_alias: str,
        run_times: list,
        run_ids: list,
        attempt: int,
    ) -> list[JobExecutionEvent]:
        events = []
        for run_time, run_id in zip(run_times, run_ids, strict=True):
            with self.app.app_context():  # type: ignore[union-attr]
                record_timed_out(run_id, started_at=None, timeout=timeout)
            event = JobExecutionEvent(
                EVENT_JOB_ERROR,
                job.id,
                jobstore_alias,
                run_time,
                exception=TimeoutError(f"timed out after {timeout:g} s"),
            )
            event.run_id, event.attempt, event.timed_out = run_id, attempt, True  # type: ignore[attr-defined]
            events.append(event)
        return events

    def _ended(self, args: tuple, reason: str) -> list[JobExecutionEvent]:
        job, jobstore_alias, run_times, run_ids, attempt = args
        events = []
        self._record_lost(run_ids, reason)
        for run_time, run_id in zip(run_times, run_ids, strict=True):
            event = JobExecutionEvent(
                EVENT_JOB_ERROR, job.id, jobstore_alias, run_time, exception=RuntimeError(reason)
            )
            event.run_id, event.attempt = run_id, attempt  # type: ignore[attr-defined]
            events.append(event)
        return events

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        watchers = getattr(self, "_watchers", None)
        if watchers is not None:
            watchers.shutdown(wait)
