"""A trigger's first fire time, found with bounded work.

APScheduler's ``CronTrigger`` looks for its next fire time as far as the year 9999. For a cron
that can never fire (``month: "4,6,9,11", day: 31``; ``week: 53, month: 2``) that is 8,000
years of months or days: 0.3 to 3.5 s of CPU with the GIL held, in the request, and again in
``add_job``/``resume_job`` under the scheduler's store lock. Here the search covers
``HORIZON_YEARS`` years after it starts (now, or the trigger's start_date) among those the
cron's ``year`` field allows (``year: 2099`` is one year to search; the years it skips cost
nothing), at about 0.7 ms per year searched at worst: a cron that does not fire by then is
refused, and the first fire time found is handed to APScheduler so that it does not search
again.

Why 30 years: any pattern of weekday and date recurs within 11 years, and February 29 on a
given weekday within 28 (40 across the year 2100); a cron that fires at all fires again within
that gap, so the walk from one fire to the next in the firing loop stays short too.
"""

from __future__ import annotations

import copy
from datetime import MAXYEAR, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from .policy import inner_trigger

HORIZON_YEARS = 30


def search_start(trigger: BaseTrigger, now: datetime) -> datetime:
    """Return where a trigger's search for its first fire time starts: now, or its start_date."""
    start = getattr(inner_trigger(trigger), "start_date", None)
    return start if start is not None and start > now else now


def first_fire_time(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """Return the trigger's first fire time after ``now``; None if it has none within
    ``HORIZON_YEARS`` of its start (date and interval triggers answer at once; a cron is
    searched up to its horizon only).

    :raises OverflowError, ValueError: the search ran past the year 9999.
    """
    inner = inner_trigger(trigger)
    if not isinstance(inner, CronTrigger):
        return trigger.get_next_fire_time(None, now)
    horizon = _horizon(inner, now)
    # CronTrigger keeps no search state, and its search gives up once past end_date (read
    # from APScheduler 3.11's get_next_fire_time): a copy with an earlier end is the bound.
    probe = copy.copy(inner)
    if horizon is not None and (probe.end_date is None or probe.end_date > horizon):
        probe.end_date = horizon
    return probe.get_next_fire_time(None, now)


def never_fires_after(trigger: BaseTrigger, now: datetime) -> bool:
    """Tell whether a trigger that has no fire time within the horizon can never fire: its
    end_date comes first, or its cron ``year`` field allows no year after the horizon."""
    inner = inner_trigger(trigger)
    if not isinstance(inner, CronTrigger):
        return True
    horizon = _horizon(inner, now)
    if horizon is None or (inner.end_date is not None and inner.end_date <= horizon):
        return True
    return _year_field(inner).get_next_value(horizon) is None


def _year_field(trigger: CronTrigger) -> Any:
    """The cron's year field: ``fields``, ``is_default`` and ``get_next_value`` are not
    documented API (read from APScheduler 3.11; FIELD_NAMES starts with "year")."""
    return trigger.fields[0]


def _horizon(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The start of the year after the last of the HORIZON_YEARS + 1 years (the current one
    and the next HORIZON_YEARS) that the year field allows from the search's start; None: the
    year 9999 comes first."""
    year, last = search_start(trigger, now).astimezone(trigger.timezone).year, None
    if _year_field(trigger).is_default:  # every year: no need to ask the field
        last = year + HORIZON_YEARS
        return None if last >= MAXYEAR else datetime(last + 1, 1, 1, tzinfo=trigger.timezone)
    for _ in range(HORIZON_YEARS + 1):
        allowed = _year_field(trigger).get_next_value(datetime(year, 1, 1))
        if allowed is None:
            break
        last = year = allowed
        if year == MAXYEAR:
            return None
        year += 1
    if last is None:  # no year left: the search ends at once
        return None
    return datetime(last + 1, 1, 1, tzinfo=trigger.timezone)
