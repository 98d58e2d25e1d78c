"""Closing the runs of processes that died: the history never keeps a run open that is not.

A run is held by one process start (its ``boot``). When that boot is known dead (its
heartbeat expired, or its pid no longer runs on this machine), its runs still submitted or
running are closed as ``unknown``: the outcome was not recorded, and nobody can tell whether
the job ran to the end. A later outcome from the same process (it was alive after all, cut
off from the database) still replaces ``unknown`` (see changes.FINISHING_FROM).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import update

from ..dbtypes import changed_rows, utcnow
from ..extensions import db
from .models import OPEN_STATES, Run
from .recorder import HOST

REASONS = {
    "submitted": "its process ended before the run was recorded as started: it may not have run",
    "running": "its process ended while the run ran: its outcome was not recorded",
}


def close_runs_of(boots: Collection[str]) -> int:
    """Close the open runs held by the dead ``boots`` as unknown; return how many."""
    if not boots:
        return 0
    table = Run.__table__
    now, closed = utcnow(), 0
    for state, reason in REASONS.items():
        result = db.session.execute(
            update(table)
            .where(table.c.boot.in_(list(boots)), table.c.state == state)
            .values(state="unknown", finished_at=now, error=reason)
        )
        closed += changed_rows(result)
    db.session.commit()
    return closed


def boots_with_open_runs(*, submitted_before: datetime) -> set[str]:
    """The boots that hold runs open since before ``submitted_before``."""
    boots = db.session.scalars(
        db.select(Run.boot)
        .where(
            Run.state.in_(OPEN_STATES),
            Run.boot.is_not(None),
            Run.submitted_at < submitted_before,
        )
        .distinct()
    ).all()
    db.session.commit()
    return {boot for boot in boots if boot}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def close_legacy_runs() -> int:
    """Close the open runs that an older release (no boot id) left on this host, when
    their pid no longer runs; return how many."""
    stale = db.session.scalars(
        db.select(Run).where(Run.state.in_(OPEN_STATES), Run.host == HOST, Run.boot.is_(None))
    ).all()
    dead = [run for run in stale if run.pid is None or not _alive(run.pid)]
    now = utcnow()
    for run in dead:
        run.error = REASONS[run.state]
        run.state = "unknown"
        run.finished_at = now
    db.session.commit()
    return len(dead)
