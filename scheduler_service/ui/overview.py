"""The overview: the scheduler's state, the cluster, the failing jobs, runs per hour and
fire lateness over the last day. Its parts are one fragment the live script re-fetches."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import render_template

from ..auth import require_role
from ..control import get_scheduler
from ..control.info import cluster_info, scheduler_info
from ..errors import ServiceUnavailable
from ..runs.service import flush_writes
from ..runs.stats import (
    LATENESS_LIMIT,
    failing_jobs,
    hour_starts,
    lateness_samples,
    percentile,
    runs_per_hour,
)
from .blueprint import bp
from .charts import histogram, stacked_bars, swatch
from .jobs import events_url
from .words import shown_time

# Upper bounds in seconds, and the names the histogram gives the buckets.
LATENESS_BUCKETS = (
    (0.1, "< 0.1 s"),
    (0.5, "0.1-0.5 s"),
    (1.0, "0.5-1 s"),
    (5.0, "1-5 s"),
    (30.0, "5-30 s"),
    (math.inf, "> 30 s"),
)
# Bottom of the stack first: the outcomes to notice, then the rest.
_STACK_ORDER = (
    "failed",
    "timed_out",
    "unknown",
    "abandoned",
    "succeeded",
    "missed",
    "skipped",
    "skipped_duplicate",
    "coalesced",
    "pending",
    "submitted",
    "running",
)


def _age(value: str | None, now: datetime) -> str:
    if not value:
        return ""
    seconds = max((now - datetime.fromisoformat(value)).total_seconds(), 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _cluster(now: datetime) -> dict[str, Any]:
    """GET /scheduler/cluster's answer with each heartbeat's age, or why there is none."""
    try:
        cluster = cluster_info(get_scheduler())
    except ServiceUnavailable as exc:
        return {"unavailable": exc.message, "replicas": []}
    for replica in cluster["replicas"]:
        replica["heartbeat_age"] = _age(replica["last_heartbeat"], now)
    return cluster


def _runs_per_hour(now: datetime) -> dict[str, Any]:
    hours = hour_starts(now)
    counts = runs_per_hour(hours)
    present = {state for _, state in counts}
    states = [s for s in _STACK_ORDER if s in present]
    states += sorted(present - set(states))  # a state this list does not know yet
    rows = [
        {
            "hour": f"{hour:%Y-%m-%d %H:00}",
            "counts": [counts.get((i, s), 0) for s in states],
            "total": sum(counts.get((i, s), 0) for s in states),
        }
        for i, hour in enumerate(hours)
    ]
    label = "Runs per hour by state over the last 24 hours (UTC)"
    return {
        "svg": stacked_bars("runs-per-hour", label, hours, counts, states),
        "columns": states,
        "legend": [(s, swatch(s)) for s in states],
        "rows": rows,
        "total": sum(counts.values()),
    }


def _lateness(now: datetime) -> dict[str, Any]:
    samples = lateness_samples(now - timedelta(hours=24))
    counts = [0] * len(LATENESS_BUCKETS)
    for late in samples:
        counts[next(i for i, (bound, _) in enumerate(LATENESS_BUCKETS) if late < bound)] += 1
    buckets = [(name, counts[i]) for i, (_, name) in enumerate(LATENESS_BUCKETS)]
    ordered = sorted(samples)
    summary = None
    if ordered:
        summary = {
            "p50": percentile(ordered, 0.5),
            "p95": percentile(ordered, 0.95),
            "max": ordered[-1],
        }
    label = "Lateness of scheduled fires (first attempts) over the last 24 hours"
    return {
        "svg": histogram("lateness", label, buckets),
        "buckets": buckets,
        "count": len(samples),
        "capped": len(samples) >= LATENESS_LIMIT,
        "summary": summary,
    }


def _parts() -> dict[str, Any]:
    now = datetime.now(UTC)
    flush_writes()  # once, for the three figures below
    extension = get_scheduler()
    return {
        "info": scheduler_info(extension),
        "cluster": _cluster(now),
        "failing": failing_jobs(now),
        "per_hour": _runs_per_hour(now),
        "lateness": _lateness(now),
        "now": shown_time(now),
        "shown_time": shown_time,
    }


@bp.get("/overview")
@require_role("viewer")
def overview() -> str:
    """The overview page."""
    return render_template("ui/overview.html", events_url=events_url(), **_parts())


@bp.get("/overview/parts")
@require_role("viewer")
def overview_parts() -> str:
    """The overview's parts alone, for the live script to swap in."""
    return render_template("ui/_overview_parts.html", **_parts())
