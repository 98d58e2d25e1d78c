"""What GET /scheduler shows of the scheduler: Flask-APScheduler's info plus the service's."""

from __future__ import annotations

from typing import Any

from apscheduler.executors.pool import ProcessPoolExecutor
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ServiceUnavailable
from ..stores import describe_jobstore
from ..version import service_version
from .extension import ServiceScheduler

_STATE_NAMES = {STATE_STOPPED: "stopped", STATE_RUNNING: "running", STATE_PAUSED: "paused"}


def state_name(state: int) -> str:
    """Name an APScheduler state constant."""
    return _STATE_NAMES.get(state, str(state))


def _describe_executor(executor: Any) -> dict[str, Any]:
    """Our executors tell their kind and size; an executor instance given in settings may be
    any class (its size is then unknown)."""
    kind = getattr(executor, "kind", None)
    if kind is None:
        kind = "processpool" if isinstance(executor, ProcessPoolExecutor) else "threadpool"
    return {"type": kind, "max_workers": getattr(executor, "max_workers", None)}


def scheduler_info(extension: ServiceScheduler) -> dict[str, Any]:
    """Return Flask-APScheduler's scheduler info plus the service's extras."""
    election = extension.election
    return {
        "current_host": extension.host_name,
        "allowed_hosts": extension.allowed_hosts,
        "running": extension.running,
        "state": state_name(extension.state),
        "firing": extension.firing,
        "replica_id": extension.replica_id,
        "role": extension.role,
        "coordination": election.backend.kind if election is not None else "none",
        "leader_id": _leader_id(extension),
        "lease_remaining_s": election.lease_remaining if election is not None else None,
        "timezone": str(extension.scheduler.timezone),
        "jobstores": [describe_jobstore(s) for s in extension.jobstores.values()],
        "executors": {alias: _describe_executor(e) for alias, e in extension.executors.items()},
        "version": service_version(),
    }


def _leader_id(extension: ServiceScheduler) -> str | None:
    if extension.election is not None:
        return extension.election.leader_id()
    return extension.replica_id if extension.role == "leader" else None


def cluster_info(extension: ServiceScheduler) -> dict[str, Any]:
    """What GET /scheduler/cluster shows: the pause flag, the leader and every replica.

    :raises ServiceUnavailable: this process keeps no replica registry, or the database is
        unavailable.
    """
    if extension.registry is None:
        raise ServiceUnavailable("this process keeps no replica registry")
    try:
        cluster = extension.registry.cluster()
    except SQLAlchemyError:
        raise ServiceUnavailable("the service database is unavailable") from None
    return {"paused": cluster["paused"], "leader_id": _leader_id(extension), **cluster}
