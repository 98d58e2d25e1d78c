"""Figures over recent runs for the dashboard's overview: the failing jobs, runs per hour by
state, and fire lateness. Each is one bounded query over the runs table, filtered on the
indexed ``scheduled_run_time``; jobs whose id starts with ``__`` (the service's own) are left
out, as the metrics leave them out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import load_only

from ..extensions import db
from .models import Run
from .service import flush_writes

# A job is failing when its latest run that ran (or was meant to) ended like this.
FAILING_STATES = ("failed", "timed_out", "unknown", "abandoned")
_RAN_STATES = ("succeeded", *FAILING_STATES)
FAILING_LIMIT = 20
FAILING_DAYS = 7
# Lateness is worked out in Python (a time difference is not portable SQL): from at most
# this many fires, the newest.
LATENESS_LIMIT = 5000


def _ours() -> Any:
    return ~Run.job_id.startswith("__", autoescape=True)


@dataclass(frozen=True)
class FailingJob:
    job_id: str
    job_name: str | None
    state: str
    when: datetime
    error: str  # its first line


def failing_jobs(now: datetime, *, limit: int = FAILING_LIMIT) -> list[FailingJob]:
    """Jobs whose latest run in the last week failed, timed out or was lost; the most recent
    failure first, at most ``limit``."""
    flush_writes()
    latest = (
        select(func.max(Run.id))
        .where(
            Run.scheduled_run_time >= now - timedelta(days=FAILING_DAYS),
            Run.state.in_(_RAN_STATES),
            _ours(),
        )
        .group_by(Run.job_id)
    )
    when = func.coalesce(Run.finished_at, Run.started_at, Run.scheduled_run_time)
    query = (
        select(Run)
        .options(
            load_only(
                Run.job_id,
                Run.job_name,
                Run.state,
                Run.error,
                Run.finished_at,
                Run.started_at,
                Run.scheduled_run_time,
            )
        )
        .where(Run.id.in_(latest), Run.state.in_(FAILING_STATES))
        .order_by(when.desc(), Run.id.desc())
        .limit(limit)
    )
    return [
        FailingJob(
            job_id=run.job_id,
            job_name=run.job_name,
            state=run.state,
            when=run.finished_at or run.started_at or run.scheduled_run_time,
            error=(run.error or "").strip().split("\n", 1)[0],
        )
        for run in db.session.scalars(query)
    ]


def hour_starts(now: datetime, hours: int = 24) -> list[datetime]:
    """The starts of the last ``hours`` whole hours, oldest first; the last holds ``now``."""
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=hours - 1 - i) for i in range(hours)]


def runs_per_hour(starts: list[datetime]) -> dict[tuple[int, str], int]:
    """How many runs were scheduled in each hour from ``starts[0]`` on, by state:
    ``{(hour index, state): count}``. One GROUP BY query; the hour is a CASE over the bounds
    (portable where date functions are not)."""
    flush_writes()
    bucket = case(
        *[(Run.scheduled_run_time >= start, i) for i, start in reversed(list(enumerate(starts)))],
        else_=-1,
    )
    rows = (
        select(bucket.label("hour"), Run.state.label("state"))
        .where(Run.scheduled_run_time >= starts[0], _ours())
        .subquery()
    )
    query = select(rows.c.hour, rows.c.state, func.count()).group_by(rows.c.hour, rows.c.state)
    return {(int(hour), state): count for hour, state, count in db.session.execute(query)}


def lateness_samples(since: datetime, *, limit: int = LATENESS_LIMIT) -> list[float]:
    """Start minus scheduled time, in seconds (never below 0), of the first attempts of
    scheduled fires since ``since``: the newest ``limit`` of them."""
    flush_writes()
    query = (
        select(Run.started_at, Run.scheduled_run_time)
        .where(
            Run.scheduled_run_time >= since,
            Run.trigger == "schedule",
            Run.attempt == 1,
            Run.started_at.is_not(None),
            _ours(),
        )
        .order_by(Run.scheduled_run_time.desc())
        .limit(limit)
    )
    return [
        max((started - scheduled).total_seconds(), 0.0)
        for started, scheduled in db.session.execute(query)
        if started is not None
    ]
