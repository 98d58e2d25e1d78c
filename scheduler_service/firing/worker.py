"""The worker side of a run: call the job inside an app context, record its start, and
report its outcome (events, and the changes that record them) to the parent's lifecycle.

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
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from flask import current_app

from ..runs.capture import capture_logs
from ..runs.changes import finished_change, queue_change, started_change, timed_out_change
from ..runs.recorder import encode_result, utcnow
from ..runs.writer import RunChange
from ..scheduler.policy import policy_of
from ..scheduler.secretrefs import (
    SecretUnavailable,
    hidden_in_logs,
    redact,
    redact_value,
    resolve_references,
)
from .lifecycle import RunEvent

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


class ChildApp(NamedTuple):
    """How a process-pool child builds its job-only app: the factory (``create_job_app``,
    handed down by ``create_app``, so the engine never imports the package root; it pickles
    by name) and the settings it is given."""

    factory: Callable[[dict[str, Any]], Flask]
    settings: dict[str, Any]


def child_app(factory: Callable[[dict[str, Any]], Flask], config: Any) -> ChildApp:
    """Return how a child builds its job-only app from ``config`` (picklable settings)."""
    settings = {k: v for k, v in config.items() if k.startswith("SCHEDULER_")}
    return ChildApp(factory, {**settings, **_CHILD_OVERRIDES})


def build_child_app(child: ChildApp) -> None:
    """Pool initializer: build the job-only app of this child process, once."""
    global _child_app
    _child_app = child.factory(child.settings)


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


def _call_kwargs(job: Job, kwargs: Any, cancel: threading.Event | None) -> Any:
    """The job's kwargs, plus ``cancel`` when the function takes it and it is not given."""
    if cancel is not None and _wants_cancel(job.func) and "cancel" not in kwargs:
        return {**kwargs, "cancel": cancel}
    return kwargs


def _watchdog(
    run_id: int | None, started: datetime, cancel: threading.Event, timeout: float
) -> threading.Timer:
    """In a thread, a run past its timeout is recorded timed_out and told by ``cancel``."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def expire() -> None:
        # The verdict first: once told, the job may end and record itself at once.
        if run_id is not None:
            with app.app_context():
                queue_change(timed_out_change(run_id, started_at=started, timeout=timeout))
        cancel.set()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    return timer


class Attempt(NamedTuple):
    """What a worker is handed: one job, its runs (run time, run id), and how they came."""

    job: Job
    jobstore: str
    runs: Sequence[tuple[datetime, int | None]]
    attempt: int
    trigger: str
    due: datetime | None  # when a pending run fell due (its lateness is measured from it)


Report = tuple[list[RunEvent], list[RunChange]]


def _event(
    attempt: Attempt, state: str, run_time: datetime, run_id: int | None, **kw: Any
) -> RunEvent:
    return RunEvent(
        state,
        attempt.job.id,
        run_id,
        attempt.attempt,
        attempt.trigger,
        run_time,
        attempt.jobstore,
        **kw,
    )


def run_one(
    attempt: Attempt, run_time: datetime, run_id: int | None, *, in_thread: bool
) -> tuple[RunEvent, RunChange | None]:
    """Run the job once for ``run_time``: record its start, and return its outcome (the
    event, and the change that records it, written by the parent's lifecycle)."""
    job = attempt.job
    started = utcnow()
    missed = (
        attempt.trigger == "schedule"
        and attempt.attempt == 1
        and job.misfire_grace_time is not None
        and started - run_time > timedelta(seconds=job.misfire_grace_time)
    )
    if missed:
        late = (started - run_time).total_seconds()
        error = f"late by {late:.3f} s (misfire_grace_time {job.misfire_grace_time} s)"
        _logger.warning('Run time of job "%s" was missed by %s', job, started - run_time)
        event = _event(attempt, "missed", run_time, run_id, lateness=late, error=error)
        change = None
        if run_id is not None:
            change = finished_change(run_id, state="missed", started_at=None, error=error)
        return event, change
    # The cancel event and the watchdog only for the runs that use them: a burst of
    # 1,000 runs shares the GIL, and every microsecond a run spends here counts.
    timeout = policy_of(job.trigger).timeout if in_thread else None
    cancel = timer = None
    if timeout is not None or _wants_cancel(job.func):
        cancel = threading.Event()
        if timeout is not None:
            timer = _watchdog(run_id, started, cancel, timeout)
    if run_id is not None:
        queue_change(started_change(run_id, started_at=started))
    try:
        state, fields, retval = _call(job, run_time, cancel)
    finally:
        if timer is not None:
            timer.cancel()
    finished = utcnow()
    if cancel is not None and cancel.is_set():  # it ended after its timeout: it stays timed_out
        state, fields = "timed_out", {**fields, "error": f"timed out after {timeout:g} s"}
    event = _event(
        attempt,
        state,
        run_time,
        run_id,
        duration=(finished - started).total_seconds(),
        lateness=(started - (attempt.due or run_time)).total_seconds(),
        error=fields.get("error"),
        retval=retval,
    )
    change = None
    if run_id is not None and state != "timed_out":
        change = finished_change(run_id, state=state, started_at=started, **fields)
    return event, change


def _call(
    job: Job, run_time: datetime, cancel: threading.Event | None
) -> tuple[str, dict[str, Any], Any]:
    """Call the job; return its state, the fields that record its outcome, and its value.

    Secret references among its arguments are resolved here, in the process that runs it,
    and their values hidden from its log records and from what the run record keeps.
    """
    # DEBUG, where APScheduler says INFO: the run history holds both facts, and two lines a
    # run through one locked stream make 1,000 jobs due at once start late.
    _logger.debug('Running job "%s" (scheduled at %s)', job, run_time)
    try:
        args, kwargs, secrets = resolve_references(
            job.args, job.kwargs, patterns=current_app.config["SCHEDULER_JOB_SECRETS"]
        )
    except SecretUnavailable as exc:
        _logger.warning('Job "%s" cannot start: %s', job, exc)
        return "failed", {"error": f"SecretUnavailable: {exc}"}, None
    with hidden_in_logs(secrets), capture_logs() as captured:
        try:
            value = job.func(*args, **_call_kwargs(job, kwargs, cancel))
        except BaseException:
            error, tb = sys.exc_info()[1:]
            formatted = "".join(traceback.format_tb(tb))
            _logger.exception('Job "%s" raised an exception', job)
            log_text, log_cut = captured.text()
            traceback.clear_frames(tb)
            fields = {
                "error": redact(f"{type(error).__name__}: {error}", secrets),
                "traceback": redact(formatted, secrets),
                "log": redact(log_text, secrets),
                "log_truncated": log_cut,
            }
            return "failed", fields, None
    _logger.debug('Job "%s" executed successfully', job)
    result, result_cut = encode_result(value)
    log_text, log_cut = captured.text()
    fields = {
        "result": redact(result, secrets),
        "result_truncated": result_cut,
        "log": redact(log_text, secrets),
        "log_truncated": log_cut,
    }
    # APScheduler's listeners see the value too.
    return "succeeded", fields, redact_value(value, secrets)


def execute(attempt: Attempt, *, in_thread: bool) -> Report:
    """Run the job once per run (as APScheduler's run_job does); return what happened."""
    events, changes = [], []
    for run_time, run_id in attempt.runs:
        event, change = run_one(attempt, run_time, run_id, in_thread=in_thread)
        events.append(event)
        if change is not None:
            changes.append(change)
    return events, changes


def run_in_app(app: Flask, attempt: Attempt) -> Report:
    """Thread-pool entry point: run inside ``app``'s context."""
    with app.app_context():
        return execute(attempt, in_thread=True)


def run_in_child_app(attempt: Attempt) -> Report:
    """Process-pool entry point: run inside this child's job-only app."""
    assert _child_app is not None, "the pool was started without its initializer"
    with _child_app.app_context():
        return execute(attempt, in_thread=False)


def run_in_dedicated_process(child: ChildApp, conn: Any, attempt: Attempt) -> None:
    """Entry point of a dedicated child (a job with a timeout): run, send the report back."""
    build_child_app(child)
    conn.send(run_in_child_app(attempt))
    conn.close()
