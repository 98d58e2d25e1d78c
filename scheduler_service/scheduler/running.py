"""The worker side of a run: call the job inside an app context and record what it did.

Runs in a thread of the service (thread pool), in a process-pool child, or in a dedicated
child process (jobs with a timeout on the process executor). Children are spawned fresh
interpreters: each builds a job-only app from the parent's settings, once.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from flask import current_app

from ..runs.capture import capture_logs
from ..runs.recorder import (
    encode_result,
    record_finished,
    record_started,
    record_timed_out,
    utcnow,
)
from .policy import policy_of

if TYPE_CHECKING:
    from apscheduler.job import Job
    from flask import Flask

_child_app: Flask | None = None  # the job-only app of a child process
_logger = logging.getLogger("apscheduler.executors.default")

# A child's job-only app needs no stores or executors (they may not even pickle), and its
# settings are already merged from the config file.
_CHILD_OVERRIDES: dict[str, Any] = {
    "SCHEDULER_JOBSTORES": {"default": None},
    "SCHEDULER_EXECUTORS": {},
    "SCHEDULER_JOBS": [],
    "SCHEDULER_CONFIG_FILE": None,
    "SCHEDULER_DATABASE_MIGRATE": False,
    "SCHEDULER_COORDINATION": "none",
}


def child_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Return the picklable settings from which a child builds its job-only app."""
    settings = {k: v for k, v in config.items() if k.startswith("SCHEDULER_")}
    return {**settings, **_CHILD_OVERRIDES}


def build_child_app(settings: dict[str, Any]) -> None:
    """Pool initializer: build the job-only app of this child process, once."""
    global _child_app
    from scheduler_service import create_job_app

    _child_app = create_job_app(settings)


def _takes_cancel(func: Any) -> bool:
    try:
        return "cancel" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


_takes_cancel_cached = functools.lru_cache(maxsize=1024)(_takes_cancel)


def _wants_cancel(func: Any) -> bool:
    """Whether ``func`` takes a ``cancel`` argument (asked once per function)."""
    try:
        return _takes_cancel_cached(func)
    except TypeError:  # unhashable, e.g. a partial of a list
        return _takes_cancel(func)


def _call_kwargs(job: Job, cancel: threading.Event | None) -> dict[str, Any]:
    """The job's kwargs, plus ``cancel`` when the function takes it and it is not given."""
    if cancel is not None and _wants_cancel(job.func) and "cancel" not in job.kwargs:
        return {**job.kwargs, "cancel": cancel}
    return job.kwargs


def _watchdog(
    run_id: int | None, started: datetime, cancel: threading.Event, timeout: float
) -> threading.Timer:
    """In a thread, a run past its timeout is recorded timed_out and told by ``cancel``."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def expire() -> None:
        # The verdict first: once told, the job may end and record itself at once.
        with app.app_context():
            record_timed_out(run_id, started_at=started, timeout=timeout)
        cancel.set()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    return timer


def _missed(job: Job, run_time: datetime, attempt: int, now: datetime) -> bool:
    return (
        attempt == 1
        and job.misfire_grace_time is not None
        and (now - run_time > timedelta(seconds=job.misfire_grace_time))
    )


def run_one(
    job: Job,
    jobstore_alias: str,
    run_time: datetime,
    run_id: int | None,
    *,
    attempt: int,
    in_thread: bool,
) -> JobExecutionEvent:
    """Run the job once for ``run_time``, recording the run; return APScheduler's event,
    with ``run_id``, ``attempt``, ``duration``, ``lateness`` and ``timed_out`` attached."""
    started = utcnow()
    if _missed(job, run_time, attempt, started):
        _logger.warning('Run time of job "%s" was missed by %s', job, started - run_time)
        record_finished(
            run_id,
            state="missed",
            started_at=None,
            error="missed its run time by more than misfire_grace_time",
        )
        event = JobExecutionEvent(EVENT_JOB_MISSED, job.id, jobstore_alias, run_time)
    else:
        # The cancel event and the watchdog only for the runs that use them: a burst of
        # 1,000 runs shares the GIL, and every microsecond a run spends here counts.
        timeout = policy_of(job.trigger).timeout if in_thread else None
        cancel = timer = None
        if timeout is not None or _wants_cancel(job.func):
            cancel = threading.Event()
            if timeout is not None:
                timer = _watchdog(run_id, started, cancel, timeout)
        try:
            event = _call(job, jobstore_alias, run_time, run_id, started, cancel)
        finally:
            if timer is not None:
                timer.cancel()
        event.duration = (utcnow() - started).total_seconds()  # type: ignore[attr-defined]
        event.lateness = (started - run_time).total_seconds()  # type: ignore[attr-defined]
        event.timed_out = cancel is not None and cancel.is_set()  # type: ignore[attr-defined]
    event.run_id = run_id  # type: ignore[attr-defined]
    event.attempt = attempt  # type: ignore[attr-defined]
    return event


def _call(
    job: Job,
    jobstore_alias: str,
    run_time: datetime,
    run_id: int | None,
    started: datetime,
    cancel: threading.Event | None,
) -> JobExecutionEvent:
    record_started(run_id, started_at=started)
    # DEBUG, where APScheduler says INFO: the run history holds both facts, and two lines a
    # run through one locked stream make 1,000 jobs due at once start late.
    _logger.debug('Running job "%s" (scheduled at %s)', job, run_time)
    with capture_logs() as captured:
        try:
            value = job.func(*job.args, **_call_kwargs(job, cancel))
        except BaseException:
            exc, tb = sys.exc_info()[1:]
            formatted = "".join(traceback.format_tb(tb))
            _logger.exception('Job "%s" raised an exception', job)
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
    _logger.debug('Job "%s" executed successfully', job)
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
    if cancel is not None and cancel.is_set():  # it ended after its timeout: it stays timed_out
        return JobExecutionEvent(
            EVENT_JOB_ERROR,
            job.id,
            jobstore_alias,
            run_time,
            exception=TimeoutError("finished after its timeout"),
        )
    return JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, jobstore_alias, run_time, value)


def execute(
    job: Job,
    jobstore_alias: str,
    run_times: Sequence[datetime],
    run_ids: Sequence[int | None],
    attempt: int,
    *,
    in_thread: bool,
) -> list[JobExecutionEvent]:
    """Run the job once per run time (as APScheduler's run_job does), recording each run."""
    return [
        run_one(job, jobstore_alias, run_time, run_id, attempt=attempt, in_thread=in_thread)
        for run_time, run_id in zip(run_times, run_ids, strict=True)
    ]


def run_in_app(app: Flask, *args: Any) -> list[JobExecutionEvent]:
    """Thread-pool entry point: run inside ``app``'s context."""
    with app.app_context():
        return execute(*args, in_thread=True)


def run_in_child_app(*args: Any) -> list[JobExecutionEvent]:
    """Process-pool entry point: run inside this child's job-only app."""
    assert _child_app is not None, "the pool was started without its initializer"
    with _child_app.app_context():
        return execute(*args, in_thread=False)


def run_in_dedicated_process(settings: dict[str, Any], conn: Any, *args: Any) -> None:
    """Entry point of a dedicated child (a job with a timeout): run, send the events back."""
    build_child_app(settings)
    conn.send(run_in_child_app(*args))
    conn.close()
