"""Cluster state in the service database: a heartbeat row per process start, and the
cluster-wide pause flag (SPEC §8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime
from ..extensions import db


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class ReplicaBeat(db.Model):  # type: ignore[name-defined]
    """One process start of the service (a boot) and its last heartbeat."""

    __tablename__ = "scheduler_replicas"

    boot: Mapped[str] = mapped_column(String(32), primary_key=True)
    replica_id: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    # Where the pid means something: kernel boot id and PID namespace (see replicas.py), and
    # the process's start time in clock ticks since the kernel booted.
    machine: Mapped[str] = mapped_column(String(128))
    pid_start: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def to_dict(self, *, alive: bool) -> dict[str, Any]:
        """Return the replica as GET /scheduler/cluster shows it."""
        return {
            "replica_id": self.replica_id,
            "boot": self.boot,
            "host": self.host,
            "pid": self.pid,
            "role": self.role,
            "started_at": _iso(self.started_at),
            "last_heartbeat": _iso(self.last_heartbeat),
            "version": self.version,
            "alive": alive,
        }


class ClusterFlag(db.Model):  # type: ignore[name-defined]
    """Whether a group of replicas (SCHEDULER_COORDINATION_NAME) fires; ``version`` counts
    the changes, so that a replica applies each once."""

    __tablename__ = "scheduler_cluster"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str | None] = mapped_column(String(200))
