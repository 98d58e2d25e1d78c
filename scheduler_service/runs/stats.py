"""Figures over recent runs for the dashboard: the failing jobs, runs per hour by state, fire
lateness, a job's run durations. Each is one bounded query over the runs table; those over
every job filter on the indexed ``scheduled_run_time`` and leave out jobs whose id starts with
``__`` (the service's own), as the metrics do. They do not flush the run writer: a page that
reads several calls ``runs.service.flush_writes`` once first."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import load_only

from ..extensions import db
from .models import Run

# A job is failing when its latest run that ran (or was meant to) ended like this.
FAILING_STATES = ("failed", "timed_out", "unknown", "abandoned")
FINISHED_STATES = ("succeeded", *FAILING_STATES)
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
    latest = (
        select(func.max(Run.id))
        .where(
            Run.scheduled_run_time >= now - timedelta(days=FAILING_DAYS),
            Run.state.in_(FINISHED_STATES),
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


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


def durations(job_id: str, *, limit: int) -> list[tuple[datetime, str, float]]:
    """(start, state, seconds) of the job's last ``limit`` finished runs, oldest first."""
    query = (
        select(Run.started_at, Run.state, Run.duration)
        .where(
            Run.job_id == job_id,
            Run.state.in_(FINISHED_STATES),
            Run.duration.is_not(None),
            Run.started_at.is_not(None),
        )
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(limit)
    )
    rows = db.session.execute(query).all()
    return [
        (started, state, float(duration))
        for started, state, duration in reversed(rows)
        if started is not None and duration is not None  # the query's filter, for the types
    ]
