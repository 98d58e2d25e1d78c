"""Pruning the run history by age and by count per job."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select

from ..dbtypes import changed_rows
from ..extensions import db
from .models import FINAL_STATES, Run
from .recorder import utcnow

log = logging.getLogger(__name__)

_CHUNK = 500  # ids deleted per statement


def _delete_ids(ids: list[int]) -> int:
    for start in range(0, len(ids), _CHUNK):
        db.session.execute(delete(Run).where(Run.id.in_(ids[start : start + _CHUNK])))
    return len(ids)


def prune_runs(*, max_age_days: float, max_per_job: int) -> int:
    """Delete finished runs older than ``max_age_days`` and beyond the newest ``max_per_job``
    of each job (0 turns either rule off); return how many were deleted."""
    finished = Run.state.in_(FINAL_STATES)
    deleted = 0
    if max_age_days > 0:
        cutoff = utcnow() - timedelta(days=max_age_days)
        result = db.session.execute(delete(Run).where(finished, Run.scheduled_run_time < cutoff))
        deleted += changed_rows(result)
    if max_per_job > 0:
        crowded = db.session.scalars(
            select(Run.job_id)
            .where(finished)
            .group_by(Run.job_id)
            .having(func.count() > max_per_job)
        ).all()
        for job_id in crowded:
            extra = db.session.scalars(
                select(Run.id)
                .where(finished, Run.job_id == job_id)
                .order_by(Run.scheduled_run_time.desc(), Run.id.desc())
                .offset(max_per_job)
            ).all()
            deleted += _delete_ids(list(extra))
    db.session.commit()
    return deleted


def housekeeping(*, max_age_days: float, max_per_job: int) -> dict[str, int]:
    """The built-in housekeeping job: prune the run history (runs in an app context)."""
    deleted = prune_runs(max_age_days=max_age_days, max_per_job=max_per_job)
    if deleted:
        log.info("housekeeping: pruned %d run(s) from the history", deleted)
    return {"pruned_runs": deleted}
