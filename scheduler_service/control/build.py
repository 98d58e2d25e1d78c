"""Build the scheduler extension from settings: job stores, executors, the run lifecycle,
the leader election and the replica registry, wired together; then the declared jobs."""

from __future__ import annotations

from collections.abc import Callable
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
from apscheduler.util import asint
from flask import Flask

from ..coordination import LeaderElection, build_backend, coordination_kind, default_replica_id
from ..coordination.replicas import ReplicaRegistry
from ..errors import ConfigError
from ..firing.executors import child_app
from ..firing.lifecycle import init_lifecycle
from ..firing.registry import build_executor
from ..runs.recorder import ORIGIN_KEY, Origin
from ..runs.writer import init_run_writer
from ..scheduler.declared import load_declared_jobs
from ..scheduler.service import JobService
from ..scheduler.specs import JobContext
from ..stores import build_jobstore
from ..version import service_version
from .extension import EXTENSION_KEY, ServiceScheduler

# Job changes other replicas must hear of (the leader re-reads its stores on a notice).
_CHANGES = EVENT_JOB_ADDED | EVENT_JOB_MODIFIED | EVENT_JOB_REMOVED | EVENT_ALL_JOBS_REMOVED


def _jobstore_settings(config: dict[str, Any], instance_path: Path) -> dict[str, Any]:
    stores = dict(config["SCHEDULER_JOBSTORES"])
    if config["SCHEDULER_JOBSTORE_URL"]:
        stores["default"] = config["SCHEDULER_JOBSTORE_URL"]
    if stores.get("default") is None:
        stores["default"] = f"sqlite:///{instance_path / 'jobs.sqlite'}"
    return stores


def init_scheduler(app: Flask, *, job_app: Callable[[dict[str, Any]], Flask]) -> ServiceScheduler:
    """Build the scheduler extension for ``app`` and validate the declared jobs; process-pool
    children build their app with ``job_app`` (create_job_app).

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
    child = child_app(job_app, config)
    for executor in executors.values():
        if hasattr(executor, "bind_app"):  # ours; an executor instance from config may not be
            executor.bind_app(app, child)
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
