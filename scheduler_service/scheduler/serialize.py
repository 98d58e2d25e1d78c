"""Jobs and triggers as JSON, in Flask-APScheduler's shape plus a few extra keys; ISO 8601."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .policy import inner_trigger, policy_of
from .upstream import store_alias


def iso(value: datetime | None) -> str | None:
    """Format a datetime as ISO 8601, or None."""
    return None if value is None else value.isoformat()


def _interval_units(delta: timedelta) -> dict[str, int]:
    weeks, days = divmod(delta.days, 7)
    minutes, seconds = divmod(delta.seconds, 60)
    hours, minutes = divmod(minutes, 60)
    units = {"weeks": weeks, "days": days, "hours": hours, "minutes": minutes, "seconds": seconds}
    return {unit: n for unit, n in units.items() if n > 0}


def trigger_to_dict(trigger: BaseTrigger) -> dict[str, Any]:
    """Return the trigger's type and fields, as Flask-APScheduler names them."""
    trigger = inner_trigger(trigger)
    data: dict[str, Any] = {}
    if isinstance(trigger, DateTrigger):
        data["trigger"] = "date"
        data["run_date"] = iso(trigger.run_date)
    elif isinstance(trigger, IntervalTrigger):
        data["trigger"] = "interval"
        data["start_date"] = iso(trigger.start_date)
        if trigger.end_date:
            data["end_date"] = iso(trigger.end_date)
        data.update(_interval_units(trigger.interval))
    elif isinstance(trigger, CronTrigger):
        data["trigger"] = "cron"
        if trigger.start_date:
            data["start_date"] = iso(trigger.start_date)
        if trigger.end_date:
            data["end_date"] = iso(trigger.end_date)
        for field in trigger.fields:
            if not field.is_default:
                data[field.name] = str(field)
    else:
        data["trigger"] = str(trigger)
    timezone = getattr(trigger, "timezone", None)
    if timezone is not None:
        data["timezone"] = str(timezone)
    if getattr(trigger, "jitter", None):
        data["jitter"] = trigger.jitter
    return data


def job_to_dict(job: Job) -> dict[str, Any]:
    """Return the job as SPEC §3 JSON (Flask-APScheduler's keys first)."""
    data: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "func": job.func_ref,
        "args": list(job.args),
        "kwargs": dict(job.kwargs),
    }
    data.update(trigger_to_dict(job.trigger))
    data["misfire_grace_time"] = job.misfire_grace_time
    data["max_instances"] = job.max_instances
    data["next_run_time"] = iso(job.next_run_time)
    data["coalesce"] = job.coalesce
    data["jobstore"] = store_alias(job)
    data["executor"] = job.executor
    policy = policy_of(job.trigger)
    data["retries"] = policy.retries
    data["retry_delay"] = policy.retry_delay
    data["timeout"] = policy.timeout
    return data
