"""Executors that run every job inside a Flask app context and record every run (SPEC §6).

A run is recorded ``submitted`` when the executor accepts it (``skipped`` when max_instances
refuses it), then ``running``, then ``succeeded``, ``failed`` or ``missed`` by the worker that
runs it. In a thread pool the worker uses the app that owns the scheduler. A process pool's
children are spawned fresh interpreters, so each builds a job-only app once, in the pool's
initializer, from the parent's settings, and records through it.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.executors.pool import ProcessPoolExecutor, ThreadPoolExecutor

from ..runs.capture import capture_logs
from ..runs.recorder import (
    encode_result,
    record_finished,
    record_started,
    record_submitted,
    utcnow,
)

if TYPE_CHECKING:
    from apscheduler.job import Job
    from flask import Flask

_child_app: Flask | None = None  # the job-only app of a process-pool child

# A child's job-only app needs no stores or executors (they may not even pickle), and its
# settings are already merged from the config file.
_CHILD_OVERRIDES: dict[str, Any] = {
    "SCHEDULER_JOBSTORES": {"default": None},
    "SCHEDULER_EXECUTORS": {},
    "SCHEDULER_JOBS": [],
    "SCHEDULER_CONFIG_FILE": None,
    "SCHEDULER_DATABASE_MIGRATE": False,
}


def child_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Return the picklable settings from which a child builds its job-only app."""
    settings = {k: v for k, v in config.items() if k.startswith("SCHEDULER_")}
    return {**settings, **_CHILD_OVERRIDES}


def _build_child_app(settings: dict[str, Any]) -> None:
    """Pool initializer: build the job-only app of this child process, once."""
    global _child_app
    from scheduler_service import create_job_app

    _child_app = create_job_app(settings)


def _run_one(
    job: Job, jobstore_alias: str, run_time: datetime, run_id: int | None, logger: logging.Logger
) -> JobExecutionEvent:
    """Run the job once for ``run_time``, recording the run; return APScheduler's event,
    carrying ``run_id``, ``duration`` and ``lateness`` (seconds) for metrics and live events."""
    started = utcnow()
    event = _run_recorded(job, jobstore_alias, run_time, run_id, logger, started)
    event.run_id = run_id  # type: ignore[attr-defined]
    if event.code != EVENT_JOB_MISSED:
        event.duration = (utcnow() - started).total_seconds()  # type: ignore[attr-defined]
        event.lateness = (started - run_time).total_seconds()  # type: ignore[attr-defined]
    return event


def _run_recorded(
    job: Job,
    jobstore_alias: str,
    run_time: datetime,
    run_id: int | None,
    logger: logging.Logger,
    started: datetime,
) -> JobExecutionEvent:
    if job.misfire_grace_time is not None and (
        utcnow() - run_time > timedelta(seconds=job.misfire_grace_time)
    ):
        logger.warning('Run time of job "%s" was missed by %s', job, utcnow() - run_time)
        record_finished(
            run_id,
            state="missed",
            started_at=None,
            error="missed its run time by more than misfire_grace_time",
        )
        return JobExecutionEvent(EVENT_JOB_MISSED, job.id, jobstore_alias, run_time)
    record_started(run_id, started_at=started)
    logger.info('Running job "%s" (scheduled at %s)', job, run_time)
    with capture_logs() as captured:
        try:
            value = job.func(*job.args, **job.kwargs)
        except BaseException:
            exc, tb = sys.exc_info()[1:]
            formatted = "".join(traceback.format_tb(tb))
            logger.exception('Job "%s" raised an exception', job)
            log_text, log_cut = captured.text()
            record_finished(
                run_id,
                state="failed",
                started_at=started,
                error=f"{type(exc).__name__}: {exc}",
                traceback=formatted,
                log=log_text,
                log_truncated=log_cut,
            )
            traceback.clear_frames(tb)
            return JobExecutionEvent(
                EVENT_JOB_ERROR,
                job.id,
                jobstore_alias,
                run_time,
                exception=exc,
                traceback=formatted,
            )
    logger.info('Job "%s" executed successfully', job)
    result, result_cut = encode_result(value)
    log_text, log_cut = captured.text()
    record_finished(
        run_id,
        state="succeeded",
        started_at=started,
        result=result,
        result_truncated=result_cut,
        log=log_text,
        log_truncated=log_cut,
    )
    return JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, jobstore_alias, run_time, value)


def _execute(
    job: Job,
    jobstore_alias: str,
    run_times: Sequence[datetime],
    logger_name: str,
    run_ids: Sequence[int | None],
) -> list[JobExecutionEvent]:
    logger = logging.getLogger(logger_name)
    return [
        _run_one(job, jobstore_alias, run_time, run_id, logger)
        for run_time, run_id in zip(run_times, run_ids, strict=True)
    ]


def _run_in_app(app: Flask, *args: Any) -> list[JobExecutionEvent]:
    with app.app_context():
        return _execute(*args)


def _run_in_child_app(*args: Any) -> list[JobExecutionEvent]:
    assert _child_app is not None, "the pool was started without its initializer"
    with _child_app.app_context():
        return _execute(*args)


class _RecordingPool:
    """What both pool executors share: submission that records, and the outcome callback."""

    app: Flask | None = None
    _runner: Callable[..., list[JobExecutionEvent]]

    def submit_job(
        self, job: Job, run_times: list[datetime], trigger: str = "schedule"
    ) -> list[int]:
        """Submit a run per run time; return their run ids.

        :raises MaxInstancesReachedError: the job already runs max_instances times (the
            refused runs are recorded as skipped).
        """
        with self._lock:  # type: ignore[attr-defined]
            if self._instances[job.id] >= job.max_instances:  # type: ignore[attr-defined]
                self._record(job, run_times, trigger, state="skipped")
                if trigger == "manual":  # the scheduler reports scheduled ones itself
                    self._scheduler._dispatch_event(
                        JobSubmissionEvent(  # type: ignore[attr-defined]
                            EVENT_JOB_MAX_INSTANCES, job.id, job._jobstore_alias, run_times
                        )
                    )
                raise MaxInstancesReachedError(job)
            run_ids = self._record(job, run_times, trigger, state="submitted")
            self._submit(job, run_times, run_ids)
            self._publish_submitted(job, run_times, run_ids, trigger)
            self._instances[job.id] += 1  # type: ignore[attr-defined]
        return run_ids

    def _record(self, job: Job, run_times: list[datetime], trigger: str, *, state: str) -> list:
        if self.app is None:
            return [None] * len(run_times)
        with self.app.app_context():
            ids = record_submitted(job=job, run_times=run_times, trigger=trigger, state=state)
        return ids or [None] * len(run_times)

    def _publish_submitted(
        self, job: Job, run_times: list[datetime], run_ids: list, trigger: str
    ) -> None:
        hub = self.app.extensions.get("scheduler_service.events") if self.app else None
        for run_time, run_id in zip(run_times, run_ids, strict=True):
            if hub is not None:
                hub.publish(
                    "run.submitted",
                    {
                        "job_id": job.id,
                        "run_id": run_id,
                        "scheduled_run_time": run_time,
                        "trigger": trigger,
                    },
                )

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        self._submit(job, run_times, [None] * len(run_times))

    def _submit(self, job: Job, run_times: list[datetime], run_ids: list) -> None:
        def done(future: Any) -> None:
            exc = future.exception()
            if exc:
                self._run_job_error(job.id, exc, getattr(exc, "__traceback__", None))  # type: ignore[attr-defined]
            else:
                self._run_job_success(job.id, future.result())  # type: ignore[attr-defined]

        args = (job, job._jobstore_alias, run_times, self._logger.name, run_ids)  # type: ignore[attr-defined]
        future = self._pool_submit(*args)
        future.add_done_callback(done)


class AppThreadPoolExecutor(_RecordingPool, ThreadPoolExecutor):
    """A thread pool whose jobs run, recorded, in the owning app's context."""

    def bind_app(self, app: Flask, settings: dict[str, Any]) -> None:
        """Run and record jobs through ``app`` from now on."""
        self.app = app

    def _pool_submit(self, *args: Any) -> Any:
        return self._pool.submit(_run_in_app, self.app, *args)


class AppProcessPoolExecutor(_RecordingPool, ProcessPoolExecutor):
    """A process pool whose children each build a job-only app to run and record jobs."""

    def bind_app(self, app: Flask, settings: dict[str, Any]) -> None:
        """Record submissions through ``app``; give the children ``settings`` for theirs."""
        self.app = app
        self.pool_kwargs.update(initializer=_build_child_app, initargs=(settings,))
        idle = self._pool
        self._pool = idle.__class__(idle._max_workers, **self.pool_kwargs)
        idle.shutdown(wait=False)

    def _pool_submit(self, *args: Any) -> Any:
        try:
            return self._pool.submit(_run_in_child_app, *args)
        except BrokenProcessPool:  # a child died: start a fresh pool, as APScheduler does
            self._logger.warning("Process pool is broken; replacing pool with a fresh instance")
            self._pool = self._pool.__class__(self._pool._max_workers, **self.pool_kwargs)
            return self._pool.submit(_run_in_child_app, *args)
