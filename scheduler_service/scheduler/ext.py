"""Build the scheduler from settings, on Flask-APScheduler's extension; get_scheduler()."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_ALL_JOBS_REMOVED,
    EVENT_JOB_ADDED,
    EVENT_JOB_MODIFIED,
    EVENT_JOB_REMOVED,
)
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from apscheduler.util import asint
from flask import Flask, current_app
from flask_apscheduler import APScheduler

from ..coordination import LeaderElection, build_backend, coordination_kind, default_replica_id
from ..coordination.replicas import ReplicaRegistry
from ..errors import ConfigError, ServiceUnavailable
from ..firing.executors import child_settings
from ..firing.lifecycle import RunLifecycle, init_lifecycle
from ..firing.loop import FencedScheduler
from ..firing.registry import build_executor
from ..runs.recorder import ORIGIN_KEY, Origin
from ..runs.retention import housekeeping
from ..runs.writer import RunWriter, init_run_writer
from ..stores import build_jobstore, describe_jobstore, probe_jobstore, sqlite_file_missing
from .declared import load_declared_jobs
from .service import JobService
from .specs import JobContext, JobSpec

log = logging.getLogger(__name__)

EXTENSION_KEY = "scheduler_service"
# A private in-memory store for the service's own jobs; the job API never shows it.
SERVICE_STORE = "__service__"
HOUSEKEEPING_ID = "__housekeeping__"
# Job changes other replicas must hear of (the leader re-reads its stores on a notice).
_CHANGES = EVENT_JOB_ADDED | EVENT_JOB_MODIFIED | EVENT_JOB_REMOVED | EVENT_ALL_JOBS_REMOVED


class ServiceScheduler(APScheduler):
    """Flask-APScheduler's extension, fed validated settings and store instances.

    The scheduler always runs once started so that the API reads and writes the stores; on a
    host outside SCHEDULER_ALLOWED_HOSTS it stays paused (serves the API, fires nothing).
    With SCHEDULER_COORDINATION, every replica runs it, and only the elected leader fires.
    Pausing and resuming apply to every replica that shares the service database (a flag
    there, see coordination/replicas.py): a paused leader keeps the lead and still takes
    manual runs.
    """

    def __init__(
        self,
        *,
        jobstores: dict[str, Any],
        executors: dict[str, Any],
        election: LeaderElection | None = None,
        replica_id: str,
        run_writer: RunWriter | None = None,
        registry: ReplicaRegistry | None = None,
        lifecycle: RunLifecycle | None = None,
    ) -> None:
        super().__init__(scheduler=FencedScheduler())
        self._jobstore_instances = jobstores
        self._executor_instances = executors
        self.declared: Sequence[JobSpec] = ()
        self.service: JobService
        self.replica_id = replica_id
        self.election = election
        self.run_writer = run_writer
        self.registry = registry
        self.lifecycle = lifecycle
        self._scheduler.lifecycle = lifecycle
        if election is not None:
            self._scheduler.may_fire = lambda: election.is_leader
        if registry is not None:
            registry.is_leader = lambda: self.state != STATE_STOPPED and self.role == "leader"
            registry.on_flag = self._apply_flag

    def _load_config(self) -> None:
        config = self.app.config
        self._scheduler.configure(
            jobstores={**self._jobstore_instances, SERVICE_STORE: MemoryJobStore()},
            executors=self._executor_instances,
            job_defaults=dict(config["SCHEDULER_JOB_DEFAULTS"]),
            timezone=ZoneInfo(config["SCHEDULER_TIMEZONE"]),
            jobstore_retry_interval=config["SCHEDULER_JOBSTORE_RETRY_INTERVAL"],
        )
        if self.election is not None:
            self._scheduler.recheck = config["SCHEDULER_COORDINATION_RECHECK"]
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

    def probe_stores(self, *, timeout: float, create: bool = True) -> dict[str, str]:
        """Check every job store answers now; return the SQLite files still to be made.

        With ``create`` off, a SQLite store whose file does not exist yet is not opened (that
        would make it): it is returned, alias -> path, instead.

        :raises ServiceUnavailable: naming the first store that does not answer.
        """
        to_make: dict[str, str] = {}
        for alias, store in self._jobstore_instances.items():
            missing = None if create else sqlite_file_missing(store)
            if missing is not None:
                to_make[alias] = str(missing)
                continue
            probe_jobstore(store, timeout=timeout)
        return to_make

    @property
    def role(self) -> str:
        """This process's part: the leader fires jobs (or would, unpaused); a follower does not."""
        if self.election is not None:
            return "leader" if self.election.is_leader else "follower"
        return "leader" if self.may_fire and self.state != 0 else "follower"

    def start(self, paused: bool = False) -> None:
        """Start, upsert the declared jobs, then fire unless paused (here, or cluster-wide)
        or on a host not allowed.

        With coordination, the election starts too: the scheduler fires once elected.
        """
        if self.run_writer is not None:
            self.run_writer.start()
        cluster_paused = self.registry.start() if self.registry is not None else False
        self._scheduler.start(paused=True)
        for spec in self.declared:
            outcome = self.service.upsert_job(spec)
            log.info("declared job %s: %s", spec.id, outcome)
        self._add_housekeeping()
        if not self.may_fire:
            log.info(
                "host %s is not in SCHEDULER_ALLOWED_HOSTS: serving the API, firing nothing",
                self.host_name,
            )
        if self.election is not None:
            self.election.contend = self.may_fire and not paused
            self.election.start()
        if not paused and not cluster_paused and self.may_fire:
            self._scheduler.resume()

    def pause(self) -> None:
        """Stop firing on every replica (the leader keeps the lead)."""
        if self.registry is not None:
            self.registry.set_paused(True)
        self._apply_flag(True)
        self.wake_leader()

    def resume(self) -> None:
        """Fire again on every replica (here, once this replica is elected)."""
        if self.registry is not None:
            self.registry.set_paused(False)
        self._apply_flag(False)
        self.wake_leader()

    def _apply_flag(self, paused: bool) -> None:
        """Follow the cluster's pause flag here (a resume also ends SCHEDULER_START_PAUSED:
        this replica contends for the lead again)."""
        if paused and self.state == STATE_RUNNING:
            self._scheduler.pause()
        elif not paused and self.may_fire:
            if self.election is not None:
                self.election.contend = True
            if self.state == STATE_PAUSED:
                self._scheduler.resume()

    def wake_leader(self) -> None:
        """Have the leader run its processing pass now (a run was requested, the pause
        flag changed): at once here, through the coordination notice elsewhere."""
        self._scheduler.wakeup()
        if self.election is not None:
            self.election.notify()

    def look_again(self) -> None:
        """Re-read the stores, the pending runs and the pause flag now, and close the runs of
        dead replicas: another replica announced a change, or this one was just elected."""
        if self.lifecycle is not None:
            self.lifecycle.requests_changed = True
        self._scheduler.wakeup()
        if self.registry is not None:
            self.registry.poke()

    def shutdown(self, wait: bool = True) -> None:
        """Stop the scheduler; with coordination, stop firing first and release the lead."""
        if self.election is not None:
            self.election.stop()
        super().shutdown(wait)
        if self.run_writer is not None:
            self.run_writer.stop()
        if self.registry is not None:
            self.registry.stop()


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
    lifecycle = init_lifecycle(app)
    settings = child_settings(config)
    for executor in executors.values():
        if hasattr(executor, "bind_app"):  # ours; an executor instance from config may not be
            executor.bind_app(app, settings)
    replica_id = config["SCHEDULER_REPLICA_ID"] or default_replica_id()
    election = _build_election(config, stores, replica_id)
    registry = ReplicaRegistry(
        app,
        replica_id=replica_id,
        group=config["SCHEDULER_COORDINATION_NAME"],
        interval=config["SCHEDULER_HEARTBEAT_INTERVAL"],
        timeout=config["SCHEDULER_HEARTBEAT_TIMEOUT"],
        version=service_version(),
    )
    app.extensions[ORIGIN_KEY] = Origin(registry.boot, replica_id)
    extension = ServiceScheduler(
        jobstores=stores,
        executors=executors,
        election=election,
        replica_id=replica_id,
        run_writer=init_run_writer(app),
        registry=registry,
        lifecycle=lifecycle,
    )
    lifecycle.wake = extension.wake_leader
    if election is not None:
        election.on_elected = extension.look_again
        election.on_notice = extension.look_again
        extension.scheduler.add_listener(lambda _: election.announce(), _CHANGES)
    extension.init_app(app)
    context = JobContext(
        allowed_modules=tuple(config["SCHEDULER_ALLOWED_MODULES"]),
        jobstores=tuple(stores),
        executors=tuple(executors),
        timezone=ZoneInfo(config["SCHEDULER_TIMEZONE"]),
        secret_patterns=tuple(config["SCHEDULER_JOB_SECRETS"]),
        # read as APScheduler reads it (asint; 1 s when the job defaults leave it out)
        misfire_grace_time=asint(config["SCHEDULER_JOB_DEFAULTS"].get("misfire_grace_time", 1)),
    )
    extension.service = JobService(extension.scheduler, context, lifecycle=lifecycle)
    extension.declared = load_declared_jobs(config, context)
    app.extensions[EXTENSION_KEY] = extension
    return extension


def _build_election(
    config: dict[str, Any], stores: dict[str, Any], replica_id: str
) -> LeaderElection | None:
    """The leader election SCHEDULER_COORDINATION asks for, not started yet.

    :raises ConfigError: an unknown backend, a missing driver, or a job store that other
        replicas cannot share.
    """
    url = config["SCHEDULER_COORDINATION"]
    if coordination_kind(url) is None:
        return None
    private = [alias for alias, store in stores.items() if isinstance(store, MemoryJobStore)]
    if private:
        raise ConfigError(
            f"SCHEDULER_COORDINATION: job store {private[0]!r} is in memory; replicas must "
            "share a persistent job store (set SCHEDULER_JOBSTORE_URL)"
        )
    backend = build_backend(
        url,
        name=config["SCHEDULER_COORDINATION_NAME"],
        replica_id=replica_id,
        lease=config["SCHEDULER_COORDINATION_LEASE"],
    )
    assert backend is not None
    return LeaderElection(backend)


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
    extension.start(paused=app.config["SCHEDULER_START_PAUSED"])


def get_scheduler() -> ServiceScheduler:
    """Return the current app's scheduler extension."""
    return current_app.extensions[EXTENSION_KEY]


def get_job_service() -> JobService:
    """Return the current app's job service."""
    return get_scheduler().service


_STATE_NAMES = {STATE_STOPPED: "stopped", STATE_RUNNING: "running", STATE_PAUSED: "paused"}


def service_version() -> str:
    """This package's installed version ("unknown" when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scheduler-service")
    except PackageNotFoundError:
        return "unknown"


def state_name(state: int) -> str:
    """Name an APScheduler state constant."""
    return _STATE_NAMES.get(state, str(state))


def _describe_executor(executor: Any) -> dict[str, Any]:
    kind = "processpool" if "Process" in type(executor).__name__ else "threadpool"
    pool = getattr(executor, "_pool", None)
    return {"type": kind, "max_workers": getattr(pool, "_max_workers", None)}


def scheduler_info(extension: ServiceScheduler) -> dict[str, Any]:
    """Return Flask-APScheduler's scheduler info plus the service's extras."""
    election = extension.election
    return {
        "current_host": extension.host_name,
        "allowed_hosts": extension.allowed_hosts,
        "running": extension.running,
        "state": state_name(extension.state),
        "firing": extension.state == STATE_RUNNING
        and extension.may_fire
        and extension.role == "leader",
        "replica_id": extension.replica_id,
        "role": extension.role,
        "coordination": election.backend.kind if election is not None else "none",
        "leader_id": _leader_id(extension),
        "lease_remaining_s": election.lease_remaining if election is not None else None,
        "timezone": str(extension.scheduler.timezone),
        "jobstores": [describe_jobstore(s) for s in extension.jobstores.values()],
        "executors": {
            alias: _describe_executor(e) for alias, e in extension._executor_instances.items()
        },
        "version": service_version(),
    }


def _leader_id(extension: ServiceScheduler) -> str | None:
    if extension.election is not None:
        return extension.election.leader_id()
    return extension.replica_id if extension.role == "leader" else None
