"""The run record: one row per run of a job, kept after the job is deleted."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import ExactString, UTCDateTime
from ..extensions import db

# The lifecycle (see firing/lifecycle.py): pending (a retry or a manual run waiting for the
# leader) -> submitted -> running -> succeeded | failed | timed_out; or missed (too late),
# skipped (max_instances reached, or a retry whose job went away), skipped_duplicate (another
# replica had claimed this fire), coalesced (a due instant folded into another run), unknown
# (its process died before the outcome was recorded), abandoned (older releases: its process
# died while it ran).
RUN_STATES = (
    "pending",
    "submitted",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "missed",
    "skipped",
    "skipped_duplicate",
    "coalesced",
    "unknown",
    "abandoned",
)
OPEN_STATES = ("submitted", "running")  # held by a live process, or closed by the sweep
FINAL_STATES = frozenset(RUN_STATES) - {"pending", *OPEN_STATES}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class Run(db.Model):  # type: ignore[name-defined]
    """One run of one job."""

    __tablename__ = "scheduler_runs"
    # One claim per fire: the scheduled first attempt of (job, time) that may run. Other runs
    # leave `claim` NULL, which a unique index does not compare.
    __table_args__ = (
        Index("uq_scheduler_runs_claim", "job_id", "scheduled_run_time", "claim", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Compared exactly (case, trailing spaces): `Nightly` and `nightly` claim their own fires.
    job_id: Mapped[str] = mapped_column(ExactString(191), index=True)
    job_name: Mapped[str | None] = mapped_column(String(200))
    func: Mapped[str | None] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(16))  # "schedule" or "manual"
    state: Mapped[str] = mapped_column(String(24), index=True)
    executor: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    scheduled_run_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration: Mapped[float | None] = mapped_column(Float)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)  # JSON text
    result_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    log: Mapped[str | None] = mapped_column(Text)
    log_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    claim: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # The process start that holds the run (see coordination/replicas.py), the replica that
    # decided it, and what the fire ledger needs.
    boot: Mapped[str | None] = mapped_column(String(32))
    replica: Mapped[str | None] = mapped_column(String(200))
    coalesced_into: Mapped[int | None] = mapped_column(Integer)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    no_leader: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    def to_dict(self) -> dict[str, Any]:
        """Return the run as SPEC §6 JSON."""
        result: Any = self.result
        if result is not None and not self.result_truncated:
            result = json.loads(result)
        return {
            "id": self.id,
            "job_id": self.job_id,
            "job_name": self.job_name,
            "func": self.func,
            "trigger": self.trigger,
            "state": self.state,
            "executor": self.executor,
            "attempt": self.attempt,
            "scheduled_run_time": _iso(self.scheduled_run_time),
            "submitted_at": _iso(self.submitted_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration": self.duration,
            "host": self.host,
            "pid": self.pid,
            "error": self.error,
            "traceback": self.traceback,
            "result": result,
            "result_truncated": self.result_truncated,
            "log": self.log,
            "log_truncated": self.log_truncated,
            "boot": self.boot,
            "replica": self.replica,
            "coalesced_into": self.coalesced_into,
            "not_before": _iso(self.not_before),
            "no_leader": bool(self.no_leader),
        }
