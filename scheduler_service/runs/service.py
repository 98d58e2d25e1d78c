"""Reading run history: filtered, paged, newest first; waiting for a run's outcome."""

from __future__ import annotations

import time
from collections.abc import Collection
from datetime import datetime
from typing import cast

from flask import current_app
from sqlalchemy import Select, func, select

from ..errors import NotFound
from ..extensions import db
from .models import FINAL_STATES, OPEN_STATES, Run
from .writer import run_writer


def flush_writes() -> None:
    """Let the run writer write what is queued, so a reader sees every change made so far."""
    writer = run_writer(current_app)
    if writer is not None:
        writer.flush()


def list_runs(
    *,
    job_id: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Run], int]:
    """Return a page of runs, newest scheduled first, and how many match in all."""
    query = select(Run)
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    if state is not None:
        query = query.where(Run.state == state)
    return page_of(query, since=since, until=until, limit=limit, offset=offset)


def latest_runs(job_ids: Collection[str]) -> dict[str, Run]:
    """Return the newest run of each of these jobs (one query; jobs that never ran are left
    out)."""
    if not job_ids:
        return {}
    flush_writes()
    newest = select(func.max(Run.id)).where(Run.job_id.in_(list(job_ids))).group_by(Run.job_id)
    return {run.job_id: run for run in db.session.scalars(select(Run).where(Run.id.in_(newest)))}


def page_of(
    query: Select[tuple[Run]],
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[Run], int]:
    """Return a page of the runs ``query`` selects, scheduled in [since, until), newest
    first, and how many match in all (after the run writer wrote what it holds)."""
    flush_writes()
    if since is not None:
        query = query.where(Run.scheduled_run_time >= since)
    if until is not None:
        query = query.where(Run.scheduled_run_time < until)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = db.session.scalars(
        query.order_by(Run.scheduled_run_time.desc(), Run.id.desc()).limit(limit).offset(offset)
    ).all()
    return cast("list[Run]", list(page)), total


def count_open_runs(job_id: str) -> int:
    """How many runs of the job count against its max_instances now: first attempts
    requested, submitted or running (retries are counted apart, as the executors do)."""
    flush_writes()
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Run)
            .where(
                Run.job_id == job_id,
                Run.state.in_(("pending", *OPEN_STATES)),
                Run.attempt == 1,
            )
        )
        or 0
    )


def get_run(run_id: int) -> Run:
    """Return one run.

    :raises NotFound: no run has this id.
    """
    flush_writes()
    run = db.session.get(Run, run_id)
    if run is None:
        raise NotFound(f"Run {run_id} not found")
    return run


def wait_for_outcome(run_id: int, *, timeout: float, poll: float = 0.05) -> Run:
    """Return the run once it has a final state, or as it is when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()  # another thread or process writes the outcome
        run = get_run(run_id)
        if run.state in FINAL_STATES or time.monotonic() >= deadline:
            return run
        time.sleep(poll)
