"""Triggers in words, the next fire times, and times as the pages show them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..scheduler.horizon import first_fire_time
from ..scheduler.policy import inner_trigger

_UNITS = (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
# CronTrigger's fields in crontab order (minute hour day month day_of_week).
CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_STEP = timedelta(microseconds=1)


def shown_time(value: datetime | None) -> str:
    """An ISO-like time to the second ("2025-01-02 03:04:05+01:00"), or "" for none."""
    return "" if value is None else value.replace(microsecond=0).isoformat(sep=" ")


def _every(delta: timedelta) -> str:
    left = int(delta.total_seconds())
    parts = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {name}{'s' if count > 1 else ''}")
    if len(parts) == 1 and parts[0].startswith("1 "):
        return f"every {parts[0][2:]}"  # "every hour", not "every 1 hour"
    return "every " + " ".join(parts or ["0 seconds"])


def _cron_fields(trigger: CronTrigger) -> dict[str, str]:
    return {field.name: str(field) for field in trigger.fields}


def crontab_of(trigger: CronTrigger) -> str:
    """The crontab line of a cron trigger (its seconds and years left out)."""
    fields = _cron_fields(trigger)
    return " ".join(fields[name] for name in CRONTAB_FIELDS)


def _cron_words(trigger: CronTrigger) -> str:
    fields = _cron_fields(trigger)
    simple_time = fields["hour"].isdigit() and fields["minute"].isdigit()
    plain = all(fields[name] == "*" for name in ("year", "month", "day", "week"))
    if simple_time and plain and fields["second"] == "0":
        at = f"{int(fields['hour']):02d}:{int(fields['minute']):02d}"
        if fields["day_of_week"] == "*":
            return f"every day at {at} ({trigger.timezone})"
        return f"at {at} on {fields['day_of_week']} ({trigger.timezone})"
    return f"cron: {crontab_of(trigger)} ({trigger.timezone})"


def trigger_words(trigger: BaseTrigger) -> str:
    """Say when a trigger fires: "every 5 minutes", "every day at 02:30 (Europe/Paris)"..."""
    inner = inner_trigger(trigger)
    if isinstance(inner, IntervalTrigger):
        return _every(inner.interval)
    if isinstance(inner, CronTrigger):
        return _cron_words(inner)
    if isinstance(inner, DateTrigger):
        return f"once at {shown_time(inner.run_date)}"
    return str(inner)


def time_zone(trigger: BaseTrigger) -> Any:
    """The trigger's time zone (None for a trigger that has none)."""
    return getattr(inner_trigger(trigger), "timezone", None)


def next_fire_times(trigger: BaseTrigger, now: datetime, count: int = 10) -> list[datetime]:
    """The next ``count`` fire times after ``now`` in the trigger's zone; fewer when the
    schedule ends (each looked for within the horizon of ``first_fire_time``)."""
    times: list[datetime] = []
    inner = inner_trigger(trigger)
    found = first_fire_time(trigger, now)
    while found is not None and len(times) < count:
        times.append(found)
        if isinstance(inner, DateTrigger):
            break
        found = first_fire_time(trigger, found + _STEP)
    zone = time_zone(trigger)
    return [t.astimezone(zone) for t in times] if zone is not None else times
