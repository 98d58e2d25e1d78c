"""From a job spec to its APScheduler trigger: dates read in the job's time zone, crontab
lines, and the first fire time (searched within the horizon: a schedule that never fires is
a 422)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..errors import Unprocessable, ValidationFailed
from .horizon import HORIZON_YEARS, first_fire_time, never_fires_after, search_start
from .specs import (
    ALL_TRIGGER_FIELDS,
    CRON_FIELDS,
    INTERVAL_UNITS,
    TRIGGER_FIELDS,
    JobContext,
    JobSpec,
)


def parse_datetime(value: str, field: str, tz: ZoneInfo) -> datetime:
    """Parse ISO 8601 or 'YYYY-MM-DD HH:MM:SS'; naive values are in ``tz``."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            "the job is not valid",
            errors={field: "not a date: use ISO 8601 or 'YYYY-MM-DD HH:MM:SS'"},
        ) from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    try:
        parsed.astimezone(UTC)  # APScheduler keeps times in UTC
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise ValidationFailed(
            "the job is not valid",
            errors={field: "out of range: outside the years 1 to 9999 in UTC"},
        ) from None
    return parsed


def job_zone(spec: JobSpec, ctx: JobContext) -> ZoneInfo:
    if spec.timezone is None:
        return ctx.timezone
    try:
        return ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            "the job is not valid", errors={"timezone": f"unknown time zone {spec.timezone!r}"}
        ) from None


def _check_fields(spec: JobSpec) -> None:
    allowed = TRIGGER_FIELDS[spec.trigger]
    given = {f for f in ALL_TRIGGER_FIELDS if getattr(spec, f) is not None}
    wrong = {f: f"not an argument of the {spec.trigger} trigger" for f in given - set(allowed)}
    if spec.crontab is not None:
        wrong.update({f: "give either crontab or cron fields" for f in given & set(CRON_FIELDS)})
    if spec.trigger == "date" and spec.run_date is None:
        wrong["run_date"] = "required for the date trigger"
    if spec.trigger == "cron" and spec.crontab is None and not given & set(CRON_FIELDS):
        # APScheduler would make every field "*": a job every second, which nobody means
        wrong["trigger"] = f"a cron trigger needs a crontab line or one of {', '.join(CRON_FIELDS)}"
    if wrong:
        raise ValidationFailed("the job is not valid", errors=wrong)


_CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
# crontab(5) numbers days from Sunday (0 or 7); APScheduler numbers them from Monday.
_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _crontab_fields(line: str) -> dict[str, str]:
    parts = line.split()
    if len(parts) != 5:
        raise ValidationFailed(
            "the job is not valid",
            errors={"crontab": "needs 5 fields: minute hour day month day_of_week"},
        )
    fields = dict(zip(_CRONTAB_FIELDS, parts, strict=True))
    fields["day_of_week"] = re.sub(
        r"\b[0-7]\b", lambda m: _CRONTAB_DAYS[int(m.group())], fields["day_of_week"]
    )
    return fields


def _cron(spec: JobSpec, tz: ZoneInfo, dates: dict[str, datetime]) -> BaseTrigger:
    if spec.crontab is not None:
        fields: dict[str, Any] = _crontab_fields(spec.crontab)
    else:
        fields = {f: getattr(spec, f) for f in CRON_FIELDS if getattr(spec, f) is not None}
    errors = {}
    for name, value in fields.items():  # one at a time, so each error names its field
        try:
            CronTrigger(**{name: value}, timezone=tz)
        except ValueError as exc:
            errors["crontab" if spec.crontab is not None else name] = str(exc)
    if errors:
        raise ValidationFailed("the job is not valid", errors=errors)
    return CronTrigger(
        **fields,
        start_date=dates.get("start_date"),
        end_date=dates.get("end_date"),
        timezone=tz,
        jitter=spec.jitter,
    )


def build_trigger(spec: JobSpec, ctx: JobContext, *, now: datetime) -> tuple[BaseTrigger, datetime]:
    """Build the APScheduler trigger of ``spec``; return it and its first fire time.

    :raises ValidationFailed: bad trigger arguments (400).
    :raises Unprocessable: a trigger that can never fire, or not within HORIZON_YEARS; that
        ends before it starts; whose run_date is further back than its misfire_grace_time; or
        whose times fall past the year 9999 (422).
    """
    _check_fields(spec)
    tz = job_zone(spec, ctx)
    dates = {
        f: parse_datetime(getattr(spec, f), f, tz)
        for f in ("run_date", "start_date", "end_date")
        if getattr(spec, f) is not None
    }
    if "start_date" in dates and "end_date" in dates and dates["end_date"] < dates["start_date"]:
        raise Unprocessable(
            "end_date is before start_date", errors={"end_date": "before start_date"}
        )
    if "run_date" in dates:
        check_not_too_late(dates["run_date"], "run_date", grace=grace_of(spec, ctx), now=now)
    try:  # datetime arithmetic near the year 9999 overflows
        trigger = _trigger(spec, tz, dates)
        first = first_fire_time(trigger, now)
        never = first is None and never_fires_after(trigger, now)
    except (OverflowError, ValueError) as exc:
        raise Unprocessable(
            "the trigger's times are out of range", errors={"trigger": f"out of range: {exc}"}
        ) from None
    if never:
        raise Unprocessable("the trigger never fires after now", errors={"trigger": "never fires"})
    if first is None:
        start = search_start(trigger, now).isoformat()
        raise Unprocessable(
            f"the trigger does not fire within {HORIZON_YEARS} years",
            errors={"trigger": f"no fire time within {HORIZON_YEARS} years of {start}"},
        )
    return trigger, first


def grace_of(spec: JobSpec, ctx: JobContext) -> int | None:
    """The job's misfire_grace_time: its own, or the job default; None: however late."""
    if "misfire_grace_time" in spec.model_fields_set:
        return spec.misfire_grace_time
    return ctx.misfire_grace_time


def check_not_too_late(when: datetime, field: str, *, grace: int | None, now: datetime) -> None:
    """Refuse a time further in the past than the job's misfire_grace_time (SPEC §3): it
    would only be recorded missed, and an hourly job due in the year 1 has 17 million
    instants to account for.

    :raises Unprocessable: naming ``field``.
    """
    late = (now - when).total_seconds()
    if grace is not None and late > grace:
        problem = f"in the past by {late:.0f} s, more than misfire_grace_time ({grace} s)"
        raise Unprocessable(f"{field} is in the past", errors={field: problem})


def _trigger(spec: JobSpec, tz: ZoneInfo, dates: dict[str, datetime]) -> BaseTrigger:
    if spec.trigger == "date":  # in the past within misfire_grace_time, it fires at once
        return DateTrigger(run_date=dates["run_date"], timezone=tz)
    if spec.trigger == "cron":
        return _cron(spec, tz, dates)
    units = {u: getattr(spec, u) for u in INTERVAL_UNITS if getattr(spec, u) is not None}
    if timedelta(**units) <= timedelta(0):
        raise Unprocessable(
            "the interval must be longer than zero",
            errors={"seconds": "give at least one of weeks, days, hours, minutes, seconds"},
        )
    return IntervalTrigger(
        **units,
        start_date=dates.get("start_date"),
        end_date=dates.get("end_date"),
        timezone=tz,
        jitter=spec.jitter,
    )
