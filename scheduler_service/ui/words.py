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
    return "every " + _and(parts or ["0 seconds"])


def _cron_fields(trigger: CronTrigger) -> dict[str, str]:
    return {field.name: str(field) for field in trigger.fields}


def crontab_of(trigger: CronTrigger) -> str:
    """The crontab line of a cron trigger (its seconds and years left out)."""
    fields = _cron_fields(trigger)
    return " ".join(fields[name] for name in CRONTAB_FIELDS)


_DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_DAY_GROUPS = {"mon-fri": "on weekdays", "sat,sun": "on weekends", "sat-sun": "on weekends"}
_ORDINAL = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _days_of_week(value: str) -> str | None:
    """ "mon-fri" -> "weekdays", "mon,wed" -> "Mondays and Wednesdays", "tue-thu" ->
    "Tuesday to Thursday"; None for what is better left as written (numbers, steps...)."""
    if value in _DAY_GROUPS:
        return _DAY_GROUPS[value]
    if "-" in value and "," not in value:
        first, _, last = value.partition("-")
        if first in _DAY_NAMES and last in _DAY_NAMES:
            return f"from {_DAY_NAMES[first]} to {_DAY_NAMES[last]}"
        return None
    names = value.split(",")
    if all(name in _DAY_NAMES for name in names):
        return "on " + _and([_DAY_NAMES[name] + "s" for name in names])
    return None


def _times(hours: str, minute: str) -> list[str] | None:
    """The times of day of an hour list and one minute: "2,14" and "30" -> 02:30, 14:30."""
    parts = hours.split(",")
    if not minute.isdigit() or not all(part.isdigit() for part in parts):
        return None
    return [f"{int(hour):02d}:{int(minute):02d}" for hour in parts]


def _day_of_month(value: str) -> str | None:
    if not value.isdigit():
        return None
    day = int(value)
    return f"on the {day}{_ORDINAL.get(day, 'th')} of the month"


def _cron_phrase(fields: dict[str, str]) -> str | None:
    """The words for the common cron shapes, or None (then the expression is shown)."""
    if fields["second"] != "0" or any(fields[f] != "*" for f in ("year", "month", "week")):
        return None
    minute, hour, day, weekday = (
        fields["minute"],
        fields["hour"],
        fields["day"],
        fields["day_of_week"],
    )
    if hour == "*" and day == "*" and weekday == "*":
        if minute == "*":
            return "every minute"
        if minute.startswith("*/") and minute[2:].isdigit():
            return _every(timedelta(minutes=int(minute[2:])))
        if minute.isdigit():
            return f"every hour at {int(minute):02d} minutes past"
        return None
    times = _times(hour, minute)
    if times is None:
        return None
    at = "at " + _and(times)
    if day == "*" and weekday == "*":
        return f"every day {at}"
    if day == "*":
        days = _days_of_week(weekday)
        return None if days is None else f"{at} {days}"
    if weekday == "*":
        monthly = _day_of_month(day)
        return None if monthly is None else f"{at} {monthly}"
    return None


def _cron_words(trigger: CronTrigger) -> str:
    fields = _cron_fields(trigger)
    phrase = _cron_phrase(fields)
    if phrase is not None:
        return f"{phrase} ({trigger.timezone})"
    extra = [f"{name} {fields[name]}" for name in ("second", "week", "year") if fields[name] != "*"]
    extra = [part for part in extra if part != "second 0"]
    return f"cron: {crontab_of(trigger)} ({trigger.timezone})" + "".join(f", {e}" for e in extra)


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
