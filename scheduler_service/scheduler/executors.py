"""Executors that run every job inside a Flask app context.

In a thread pool the job gets the context of the app that owns the scheduler. A process pool's
children are spawned fresh interpreters with no app, so each child builds a job-only app once,
in the pool's initializer, from the parent's settings (no scheduler, no job stores).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ProcessPoolExecutor, ThreadPoolExecutor

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


def _run_in_child_app(job: Job, jobstore_alias: str, run_times: list, logger_name: str) -> list:
    if _child_app is None:  # a pool started without the initializer
        return run_job(job, jobstore_alias, run_times, logger_name)
    with _child_app.app_context():
        return run_job(job, jobstore_alias, run_times, logger_name)


def _run_in_app(
    app: Flask, job: Job, jobstore_alias: str, run_times: list, logger_name: str
) -> list:
    with app.app_context():
        return run_job(job, jobstore_alias, run_times, logger_name)


def _submit(
    executor: Any, runner: Callable[..., list], job: Job, run_times: list, *first: Any
) -> None:
    """Submit one job run through ``runner``, reporting its outcome as APScheduler does."""

    def done(future: Any) -> None:
        exc = future.exception()
        if exc:
            executor._run_job_error(job.id, exc, getattr(exc, "__traceback__", None))
        else:
            executor._run_job_success(job.id, future.result())

    future = executor._pool.submit(
        runner, *first, job, job._jobstore_alias, run_times, executor._logger.name
    )
    future.add_done_callback(done)


class AppThreadPoolExecutor(ThreadPoolExecutor):
    """A thread pool whose jobs run in the owning app's context."""

    app: Flask | None = None

    def bind_app(self, app: Flask, settings: dict[str, Any]) -> None:
        """Run jobs in ``app``'s context from now on."""
        self.app = app

    def _do_submit_job(self, job: Job, run_times: list) -> None:
        if self.app is None:
            super()._do_submit_job(job, run_times)
        else:
            _submit(self, _run_in_app, job, run_times, self.app)


class AppProcessPoolExecutor(ProcessPoolExecutor):
    """A process pool whose children each build a job-only app and run jobs in its context."""

    def bind_app(self, app: Flask, settings: dict[str, Any]) -> None:
        """Give the children ``settings`` to build their app from (replaces the idle pool)."""
        self.pool_kwargs.update(initializer=_build_child_app, initargs=(settings,))
        idle = self._pool
        self._pool = idle.__class__(idle._max_workers, **self.pool_kwargs)
        idle.shutdown(wait=False)

    def _do_submit_job(self, job: Job, run_times: list) -> None:
        try:
            _submit(self, _run_in_child_app, job, run_times)
        except BrokenProcessPool:  # a child died: start a fresh pool, as APScheduler does
            self._logger.warning("Process pool is broken; replacing pool with a fresh instance")
            self._pool = self._pool.__class__(self._pool._max_workers, **self.pool_kwargs)
            _submit(self, _run_in_child_app, job, run_times)
