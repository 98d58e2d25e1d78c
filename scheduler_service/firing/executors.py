"""Executors that record every run (SPEC §6) and enforce timeouts.

The parent side of a run: the executor takes runs recorded already (claimed fires, pending
runs the loop took), refuses those over max_instances (recorded ``skipped``), and hands the
others to a worker (see worker.py). What the worker reports goes to the app's run lifecycle
(lifecycle.py), which records it, announces it and requests retries. Retries are counted
apart from the job's instances, so a retry never makes the next scheduled fire be skipped.
On the process executor a job with a timeout runs in a dedicated child that is terminated
when the timeout passes.

Size: the parent side of a run on both executors: they share the recording base class.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.executors.pool import ProcessPoolExecutor, ThreadPoolExecutor

from ..runs.changes import timed_out_change
from ..runs.recorder import record_submitted
from ..runs.writer import RunChange
from ..scheduler.policy import policy_of
from ..scheduler.upstream import store_alias
from .lifecycle import Fire, RunEvent, RunLifecycle, lifecycle_of
from .pool import WorkerPool
from .worker import (
    Attempt,
    ChildApp,
    build_child_app,
    child_app,
    run_in_app,
    run_in_child_app,
    run_in_dedicated_process,
)

if TYPE_CHECKING:
    from apscheduler.job import Job
    from flask import Flask

__all__ = ["AppProcessPoolExecutor", "AppThreadPoolExecutor", "ChildApp", "child_app"]

log = logging.getLogger(__name__)

_CODES = {"succeeded": EVENT_JOB_EXECUTED, "missed": EVENT_JOB_MISSED}


def _apscheduler_events(events: list[RunEvent]) -> list[JobExecutionEvent]:
    """APScheduler's events for listeners added through its API (Flask-APScheduler users)."""
    return [
        JobExecutionEvent(
            _CODES.get(e.state, EVENT_JOB_ERROR),
            e.job_id,
            e.jobstore,
            e.scheduled_run_time,
            retval=e.retval,
            exception=RunFailed(e.error) if e.state not in _CODES else None,
        )
        for e in events
    ]


class RunFailed(Exception):
    """What a failed run raised, as APScheduler listeners see it (its type and message)."""


class _RecordingPool:
    """What both pool executors share: recorded submission and outcomes, through the app's
    run lifecycle."""

    app: Flask | None = None
    lifecycle: RunLifecycle | None = None

    def submit_job(
        self,
        job: Job,
        run_times: list[datetime],
        trigger: str = "schedule",
        attempt: int = 1,
        *,
        claimed: list[tuple[datetime, int | None]] | None = None,
        due: datetime | None = None,
    ) -> list[int | None]:
        """Submit a run per run time; return their run ids.

        ``claimed`` holds the runs recorded already (scheduled fires claimed by the loop, or
        a pending run it took), as (run time, run id) pairs; they replace ``run_times``.
        Without it, scheduled fires are claimed here and other runs recorded as submitted.

        :raises MaxInstancesReachedError: the job already runs max_instances times (the
            refused runs are recorded as skipped). Retries (attempt > 1) are not refused.
        """
        key = job.id if attempt == 1 else f"{job.id}\0retry"
        # The lock guards the instance count only: held while a run is recorded or handed
        # to the pool, it would make every finishing worker queue behind a burst of submits.
        with self._lock:  # type: ignore[attr-defined]
            refused = attempt == 1 and self._instances[key] >= job.max_instances  # type: ignore[attr-defined]
            if not refused:
                self._instances[key] += 1  # type: ignore[attr-defined]  # released if not run
        try:
            if claimed is None:
                claimed = self._record(job, run_times, trigger, attempt)
        except BaseException:
            if not refused:
                self._release(key)
            raise
        if refused:
            self._lifecycle.skipped(job, claimed, trigger=trigger, attempt=attempt)
            raise MaxInstancesReachedError(job)
        try:
            if not claimed:  # every one of these fires was claimed by another replica
                self._release(key)
                return []
            # Announced first: a fast job's outcome must not be published before it.
            self._lifecycle.submitted(job, claimed, trigger=trigger, attempt=attempt)
            work = Attempt(job, store_alias(job), claimed, attempt, trigger, due)
            self._submit(work, key)
        except BaseException:
            self._release(key)
            raise
        return [run_id for _, run_id in claimed]

    @property
    def _lifecycle(self) -> RunLifecycle:
        if self.lifecycle is None:  # an executor used outside the service (no app bound)
            raise RuntimeError("this executor is not bound to an app (bind_app)")
        return self.lifecycle

    def _record(
        self, job: Job, run_times: list[datetime], trigger: str, attempt: int
    ) -> list[tuple[datetime, int | None]]:
        """Claim scheduled fires, or record other runs as submitted."""
        if trigger == "schedule" and attempt == 1:
            return self._lifecycle.claim([Fire(job, run_times)])[0]
        assert self.app is not None
        with self.app.app_context():
            ids = record_submitted(job=job, run_times=run_times, trigger=trigger, attempt=attempt)
        none: list[int | None] = [None] * len(run_times)
        return list(zip(run_times, ids or none, strict=True))

    def _release(self, key: str) -> None:
        """Give back an instance reserved for runs that were not submitted."""
        with self._lock:  # type: ignore[attr-defined]
            self._instances[key] -= 1  # type: ignore[attr-defined]
            if not self._instances[key]:  # type: ignore[attr-defined]
                del self._instances[key]  # type: ignore[attr-defined]

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        self._submit(
            Attempt(job, store_alias(job), [(t, None) for t in run_times], 1, "schedule", None),
            job.id,
        )

    def claim_many(self, fires: list[Fire]) -> list[list[tuple[datetime, int | None]]]:
        """Claim the due instants of many jobs in one write (see RunLifecycle.claim).

        :raises HistoryUnavailable: the service database did not take the claim.
        """
        return self._lifecycle.claim(fires)

    def _submit(self, work: Attempt, key: str) -> None:
        def done(future: Any) -> None:
            exc = future.exception()
            if exc:  # the worker itself failed (e.g. a process-pool child died)
                reason = f"{type(exc).__name__}: {exc}"
                events = self._lifecycle.lost(
                    work.job, work.runs, trigger=work.trigger, attempt=work.attempt, error=reason
                )
                self._finish(work, key, events, [])
                return
            events, changes = future.result()
            self._finish(work, key, events, changes)

        self._pool_submit(work).add_done_callback(done)

    def _finish(
        self, work: Attempt, key: str, events: list[RunEvent], changes: list[RunChange]
    ) -> None:
        """Record and announce the outcome, free the instance, tell APScheduler's listeners."""
        self._lifecycle.report(work.job, events, changes)
        self._run_job_success(key, _apscheduler_events(events))  # type: ignore[attr-defined]

    def _pool_submit(self, work: Attempt) -> concurrent.futures.Future:
        raise NotImplementedError


class AppThreadPoolExecutor(_RecordingPool, ThreadPoolExecutor):
    """A thread pool whose jobs run, recorded, in the owning app's context."""

    kind = "threadpool"
    _pool: Any  # APScheduler's pool, replaced by ours in __init__

    def __init__(self, max_workers: int = 10, pool_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(max_workers, pool_kwargs)
        self.max_workers = max_workers
        self.pool_kwargs = dict(pool_kwargs or {})
        standard = self._pool
        self._pool = WorkerPool(max_workers, **self.pool_kwargs)
        self._pool_closed = False
        standard.shutdown(wait=False)

    def start(self, scheduler: Any, alias: str) -> None:
        # APScheduler keeps a shut-down pool across POST /shutdown then /start: renew it.
        if self._pool_closed:
            self._pool = WorkerPool(self.max_workers, **self.pool_kwargs)
            self._pool_closed = False
        super().start(scheduler, alias)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        self._pool_closed = True

    def bind_app(self, app: Flask, child: ChildApp) -> None:
        """Run and record jobs through ``app`` from now on."""
        self.app = app
        self.lifecycle = lifecycle_of(app)

    def _pool_submit(self, work: Attempt) -> concurrent.futures.Future:
        return self._pool.submit(run_in_app, self.app, work)


class AppProcessPoolExecutor(_RecordingPool, ProcessPoolExecutor):
    """A process pool whose children build a job-only app to run and record jobs."""

    kind = "processpool"
    _child: ChildApp | None = None
    _pool: Any  # APScheduler's pool, rebuilt in bind_app with the child initializer

    def __init__(self, max_workers: int = 10, pool_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(max_workers, pool_kwargs)
        self.max_workers = max_workers
        self._pool_closed = False
        self._watchers = self._new_watchers()

    def bind_app(self, app: Flask, child: ChildApp) -> None:
        """Record submissions through ``app``; the children build theirs as ``child`` says."""
        self.app = app
        self.lifecycle = lifecycle_of(app)
        self._child = child
        self.pool_kwargs.update(initializer=build_child_app, initargs=(child,))
        idle = self._pool
        self._pool = self._new_pool()
        idle.shutdown(wait=False)

    def start(self, scheduler: Any, alias: str) -> None:
        # APScheduler keeps a shut-down pool across POST /shutdown then /start: renew it.
        if self._pool_closed:
            self._pool = self._new_pool()
            self._watchers = self._new_watchers()
            self._pool_closed = False
        super().start(scheduler, alias)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        self._watchers.shutdown(wait=wait)
        self._pool_closed = True

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(self.max_workers, **self.pool_kwargs)

    def _new_watchers(self) -> concurrent.futures.ThreadPoolExecutor:
        """Threads that wait on the runs with a timeout, each in a child of its own."""
        return concurrent.futures.ThreadPoolExecutor(
            self.max_workers, thread_name_prefix="timeout-watch"
        )

    def _pool_submit(self, work: Attempt) -> concurrent.futures.Future:
        timeout = policy_of(work.job.trigger).timeout
        if timeout is not None and self._child is not None:
            return self._watchers.submit(self._run_dedicated, timeout, work)
        try:
            return self._pool.submit(run_in_child_app, work)
        except BrokenProcessPool:  # a child died: start a fresh pool, as APScheduler does
            self._logger.warning("Process pool is broken; replacing pool with a fresh instance")
            self._pool = self._new_pool()
            return self._pool.submit(run_in_child_app, work)

    def _run_dedicated(
        self, timeout: float, work: Attempt
    ) -> tuple[list[RunEvent], list[RunChange]]:
        """Run in a child of its own; terminate it when ``timeout`` passes."""
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=run_in_dedicated_process, args=(self._child, send, work), daemon=True
        )
        child.start()
        send.close()
        child.join(timeout)
        if not child.is_alive():
            with receive:
                try:
                    return receive.recv()
                except EOFError:  # it died before it could report
                    reason = f"its process exited with code {child.exitcode}"
                    return self._lifecycle.lost(
                        work.job,
                        work.runs,
                        trigger=work.trigger,
                        attempt=work.attempt,
                        error=reason,
                    ), []
        child.terminate()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
        receive.close()
        return self._timed_out(timeout, work)

    def _timed_out(self, timeout: float, work: Attempt) -> tuple[list[RunEvent], list[RunChange]]:
        error = f"timed out after {timeout:g} s"
        events = [
            RunEvent(
                "timed_out",
                work.job.id,
                run_id,
                work.attempt,
                work.trigger,
                run_time,
                work.jobstore,
                duration=timeout,
                error=error,
            )
            for run_time, run_id in work.runs
        ]
        changes = [
            timed_out_change(run_id, started_at=None, timeout=timeout)
            for _, run_id in work.runs
            if run_id is not None
        ]
        return events, changes
