"""Pending runs: retries and manual runs recorded for the firing leader to take when due.
Call inside an app context."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import update

from ..dbtypes import changed_rows, utcnow
from ..extensions import db
from .models import Run
from .recorder import HOST, HistoryUnavailable, Origin, current_origin, insert_rows, run_row


def request_run(
    *,
    job: Any,
    trigger: str,
    attempt: int,
    scheduled_run_time: datetime,
    not_before: datetime,
) -> int:
    """Insert a pending run (a retry, or a manual run) for the firing leader to take once
    ``not_before`` has passed; return its id.

    :raises HistoryUnavailable: the database did not take it.
    """
    row = run_row(
        job,
        scheduled_run_time,
        trigger=trigger,
        state="pending",
        attempt=attempt,
        now=utcnow(),
        origin=Origin(None, None),  # no process holds it until the leader takes it
    )
    row.update(submitted_at=None, host=None, pid=None, not_before=not_before)
    try:
        run_id = insert_rows([row])[0]
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        raise HistoryUnavailable(f"could not record the run of job {job.id}: {exc}") from exc
    return run_id


class PendingRun(NamedTuple):
    """A run waiting for the leader: a retry, or a manual run."""

    id: int
    job_id: str
    trigger: str
    attempt: int
    scheduled_run_time: datetime
    not_before: datetime


PENDING_BATCH = 100  # pending runs read at once


def pending_runs(
    now: datetime, *, limit: int = PENDING_BATCH
) -> tuple[list[PendingRun], datetime | None]:
    """Return the pending runs due by ``now`` (oldest first, at most ``limit``), and when the
    next one not yet due is."""
    rows = db.session.execute(
        db.select(*(getattr(Run, name) for name in PendingRun._fields))
        .where(Run.state == "pending", Run.not_before <= now)
        .order_by(Run.not_before, Run.id)
        .limit(limit)
    )
    due = [PendingRun(*row) for row in rows]
    following = db.session.scalar(
        db.select(db.func.min(Run.not_before)).where(Run.state == "pending", Run.not_before > now)
    )
    db.session.commit()  # end the read: a long-lived session would see an old snapshot
    return due, following


def take_pending(run_id: int) -> bool:
    """Take a pending run for this process; False when another took or cancelled it."""
    origin = current_origin()
    table = Run.__table__
    result = db.session.execute(
        update(table)
        .where(table.c.id == run_id, table.c.state == "pending")
        .values(
            state="submitted",
            submitted_at=utcnow(),
            boot=origin.boot,
            replica=origin.replica,
            host=HOST,
            pid=os.getpid(),
        )
    )
    db.session.commit()
    return changed_rows(result) == 1


def cancel_pending(run_id: int, *, reason: str) -> None:
    """Close a pending run that will not run (its job was removed or paused)."""
    table = Run.__table__
    db.session.execute(
        update(table)
        .where(table.c.id == run_id, table.c.state == "pending")
        .values(
            state="skipped", finished_at=utcnow(), error=reason, replica=current_origin().replica
        )
    )
    db.session.commit()
