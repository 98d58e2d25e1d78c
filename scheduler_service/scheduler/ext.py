"""Build the scheduler from settings, on Flask-APScheduler's extension; get_scheduler()."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from flask import Flask, current_app
from flask_apscheduler import APScheduler

from ..errors import ConfigError, ServiceUnavailable
from ..runs.recorder import mark_abandoned
from ..runs.retention import housekeeping
from .backends import build_executor, build_jobstore, describe_jobstore, probe_jobstore
from .declared import load_declared_jobs
from .executors import child_settings
from .service import JobService
from .specs import JobContext, JobSpec

log = logging.getLogger(__name__)

EXTENSION_KEY = "scheduler_service"
# A private in-memory store for the service's own jobs; the job API never shows it.
SERVICE_STORE = "__service__"
HOUSEKEEPING_ID = "__housekeeping__"


class _BackgroundScheduler(BackgroundScheduler):
    """APScheduler's background scheduler, minus one pass of job processing after shutdown.

    APScheduler 3 wakes its thread on shutdown and processes jobs once more on the closed
    stores; SQL and Redis stores reconnect, so every due run is moved on without running.
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        return super()._process_jobs()


class ServiceScheduler(APScheduler):
    """Flask-APScheduler's extension, fed validated settings and store instances.

    The scheduler always runs once started so that the API reads and writes the stores; on a
    host outside SCHEDULER_ALLOWED_HOSTS it stays paused (serves the API, fires nothing).
    """

    def __init__(self, *, jobstores: dict[str, Any], executors: dict[str, Any]) -> None:
        super().__init__(scheduler=_BackgroundScheduler())
        self._jobstore_instances = jobstores
        self._executor_instances = executors
        self.declared: list[JobSpec] = []
        self.service: JobService

    def _load_config(self) -> None:
        config = self.app.config
        self._scheduler.configure(
            jobstores={**self._jobstore_instances, SERVICE_STORE: MemoryJobStore()},
            executors=self._executor_instances,
            job_defaults=dict(config["SCHEDULER_JOB_DEFAULTS"]),
            timezone=ZoneInfo(config["SCHEDULER_TIMEZONE"]),
            jobstore_retry_interval=config["SCHEDULER_JOBSTORE_RETRY_INTERVAL"],
        )
        self.allowed_hosts = list(config["SCHEDULER_ALLOWED_HOSTS"])
        self.api_prefix = config["SCHEDULER_API_PREFIX"]
        self.api_enabled = False  # the service serves its own, hardened API

    def _load_jobs(self) -> None:
        """Declared jobs are upserted after start (see start), never queued as pending jobs."""

    def _add_housekeeping(self) -> None:
        config = self.app.config
        interval = config["SCHEDULER_HOUSEKEEPING_INTERVAL"]
        self._scheduler.add_job(
            housekeeping,
            trigger="interval",
            seconds=interval,
            id=HOUSEKEEPING_ID,
            name="prune the run history",
            jobstore=SERVICE_STORE,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
            kwargs={
                "max_age_days": config["SCHEDULER_RUNS_MAX_AGE_DAYS"],
                "max_per_job": config["SCHEDULER_RUNS_MAX_PER_JOB"],
            },
        )

    @property
    def may_fire(self) -> bool:
        """Whether this host is allowed to fire jobs."""
        return "*" in self.allowed_hosts or self.host_name in self.allowed_hosts

    @property
    def jobstores(self) -> dict[str, Any]:
        return self._jobstore_instances

    def probe_stores(self, *, timeout: float) -> None:
        """Check every job store answers now.

        :raises ServiceUnavailable: naming the first store that does not.
        """
        for store in self._jobstore_instances.values():
            probe_jobstore(store, timeout=timeout)

    def start(self, paused: bool = False) -> None:
        """Start, upsert the declared jobs, then fire unless paused or on a host not allowed."""
        self._scheduler.start(paused=True)
        for spec in self.declared:
            outcome = self.service.upsert_job(spec)
            log.info("declared job %s: %s", spec.id, outcome)
        self._add_housekeeping()
        if not paused and self.may_fire:
            self._scheduler.resume()
        elif not self.may_fire:
            log.info(
                "host %s is not in SCHEDULER_ALLOWED_HOSTS: serving the API, firing nothing",
                self.host_name,
            )


def _jobstore_settings(config: dict[str, Any], instance_path: Path) -> dict[str, Any]:
    stores = dict(config["SCHEDULER_JOBSTORES"])
    if config["SCHEDULER_JOBSTORE_URL"]:
        stores["default"] = config["SCHEDULER_JOBSTORE_URL"]
    if stores.get("default") is None:
        stores["default"] = f"sqlite:///{instance_path / 'jobs.sqlite'}"
    return stores


def init_scheduler(app: Flask) -> ServiceScheduler:
    """Build the scheduler extension for ``app`` and validate the declared jobs.

    :raises ConfigError: a store, executor or declared job is invalid.
    """
    config = app.config
    stores = {
        alias: build_jobstore(alias, spec)
        for alias, spec in _jobstore_settings(config, Path(app.instance_path)).items()
    }
    executors = {
        alias: build_executor(alias, spec)
        for alias, spec in dict(config["SCHEDULER_EXECUTORS"]).items()
    }
    if "default" not in executors:
        raise ConfigError("SCHEDULER_EXECUTORS: needs a 'default' executor")
    settings = child_settings(config)
    for executor in executors.values():
        if hasattr(executor, "bind_app"):  # ours; an executor instance from config may not be
            executor.bind_app(app, settings)
    extension = ServiceScheduler(jobstores=stores, executors=executors)
    extension.init_app(app)
    context = JobContext(
        allowed_modules=tuple(config["SCHEDULER_ALLOWED_MODULES"]),
        jobstores=tuple(stores),
        executors=tuple(executors),
        timezone=ZoneInfo(config["SCHEDULER_TIMEZONE"]),
    )
    extension.service = JobService(extension.scheduler, context)
    extension.declared = load_declared_jobs(config, context)
    app.extensions[EXTENSION_KEY] = extension
    return extension


def start_scheduler(app: Flask) -> None:
    """Check the stores answer (waiting up to SCHEDULER_STORE_WAIT), then start the scheduler.

    :raises ConfigError: a job store is unreachable (one line naming it and the cause).
    """
    extension: ServiceScheduler = app.extensions[EXTENSION_KEY]
    deadline = time.monotonic() + app.config["SCHEDULER_STORE_WAIT"]
    while True:
        try:
            extension.probe_stores(timeout=app.config["SCHEDULER_STORE_TIMEOUT"])
            break
        except ServiceUnavailable as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfigError(f"SCHEDULER_JOBSTORES: {exc.message}") from None
            log.warning(
                "%s; retrying for %.0f more seconds (SCHEDULER_STORE_WAIT)", exc.message, remaining
            )
            time.sleep(min(2.0, remaining))
    _mark_abandoned_runs(app)
    extension.start(paused=app.config["SCHEDULER_START_PAUSED"])


def _mark_abandoned_runs(app: Flask) -> None:
    try:
        with app.app_context():
            count = mark_abandoned()
    except Exception:  # e.g. no runs table yet with SCHEDULER_DATABASE_MIGRATE off
        log.exception("could not check for runs abandoned by a crashed process")
        return
    if count:
        log.warning("marked %d run(s) of a process that ended mid-run as abandoned", count)


def get_scheduler() -> ServiceScheduler:
    """Return the current app's scheduler extension."""
    return current_app.extensions[EXTENSION_KEY]


def get_job_service() -> JobService:
    """Return the current app's job service."""
    return get_scheduler().service


_STATE_NAMES = {0: "stopped", 1: "running", 2: "paused"}


def state_name(state: int) -> str:
    """Name an APScheduler state constant."""
    return _STATE_NAMES.get(state, str(state))


def _describe_executor(executor: Any) -> dict[str, Any]:
    kind = "processpool" if "Process" in type(executor).__name__ else "threadpool"
    pool = getattr(executor, "_pool", None)
    return {"type": kind, "max_workers": getattr(pool, "_max_workers", None)}


def scheduler_info(extension: ServiceScheduler) -> dict[str, Any]:
    """Return Flask-APScheduler's scheduler info plus the service's extras."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        service_version = version("scheduler-service")
    except PackageNotFoundError:
        service_version = "unknown"
    return {
        "current_host": extension.host_name,
        "allowed_hosts": extension.allowed_hosts,
        "running": extension.running,
        "state": state_name(extension.state),
        "firing": extension.state == 1 and extension.may_fire,
        "timezone": str(extension.scheduler.timezone),
        "jobstores": [describe_jobstore(s) for s in extension.jobstores.values()],
        "executors": {
            alias: _describe_executor(e) for alias, e in extension._executor_instances.items()
        },
        "version": service_version,
    }
