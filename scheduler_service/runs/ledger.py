"""Reading the fire ledger (SPEC §6): every due instant of a job and what became of it.

The ledger is the first attempt of each scheduled instant in the run history (a claim,
a coalesced instant, a missed or skipped fire, a duplicate found by a second replica); its
retries are the later attempts of the same instant.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..extensions import db
from .models import Run
from .service import page_of

_OUTCOMES = {
    "coalesced": "coalesced",
    "missed": "missed",
    "skipped": "skipped",
    "skipped_duplicate": "skipped_duplicate",
}


def _late_by(run: Run) -> float | None:
    decided = run.started_at or (run.finished_at if run.state == "missed" else None)
    if decided is None:
        return None
    return round((decided - run.scheduled_run_time).total_seconds(), 6)


def fire_to_dict(run: Run, attempts: list[Run]) -> dict[str, Any]:
    """Return one ledger record: the instant, its outcome, and the runs it became."""
    return {
        "scheduled_run_time": run.scheduled_run_time.isoformat(),
        "outcome": _OUTCOMES.get(run.state, "run"),
        "run_id": run.id,
        "state": run.state,
        "coalesced_into": run.coalesced_into,
        "decided_by": run.replica or run.host,
        "host": run.host,
        "no_leader": bool(run.no_leader),
        "late_by": _late_by(run),
        "error": run.error,
        "attempts": [
            {"run_id": a.id, "attempt": a.attempt, "state": a.state}
            for a in sorted(attempts, key=lambda a: (a.attempt, a.id))
        ],
    }


def list_fires(
    job_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Return a page of a job's ledger, newest instant first, and how many match in all."""
    query = select(Run).where(Run.job_id == job_id, Run.trigger == "schedule", Run.attempt == 1)
    page, total = page_of(query, since=since, until=until, limit=limit, offset=offset)
    retries: dict[datetime, list[Run]] = defaultdict(list)
    times = sorted({run.scheduled_run_time for run in page})
    if times:
        later = db.session.scalars(
            select(Run).where(
                Run.job_id == job_id,
                Run.trigger == "schedule",
                Run.attempt > 1,
                Run.scheduled_run_time.in_(times),
            )
        )
        for attempt in later:
            retries[attempt.scheduled_run_time].append(attempt)
    records = [
        fire_to_dict(
            run, retries[run.scheduled_run_time] if run.state != "skipped_duplicate" else []
        )
        for run in page
    ]
    return records, total
