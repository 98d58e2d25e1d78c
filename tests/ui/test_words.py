"""Triggers in words (scheduler_service/ui/words.py): the common shapes said in English, the
rest shown as the cron expression they are, never a wrong sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler_service.ui.words import crontab_of, shown_time, trigger_words

PARIS = "Europe/Paris"


@pytest.mark.parametrize(
    ("crontab", "zone", "words"),
    [
        ("30 2 * * mon-fri", PARIS, "at 02:30 on weekdays (Europe/Paris)"),
        ("30 2 * * *", "UTC", "every day at 02:30 (UTC)"),
        ("0 0 * * *", "UTC", "every day at 00:00 (UTC)"),
        ("5 14 * * *", PARIS, "every day at 14:05 (Europe/Paris)"),
        ("0 2,14 * * *", "UTC", "every day at 02:00 and 14:00 (UTC)"),
        ("0 6,12,18 * * *", "UTC", "every day at 06:00, 12:00 and 18:00 (UTC)"),
        ("0 9 * * sat,sun", "UTC", "at 09:00 on weekends (UTC)"),
        ("0 9 * * sat-sun", "UTC", "at 09:00 on weekends (UTC)"),
        ("0 9 * * mon", "UTC", "at 09:00 on Mondays (UTC)"),
        ("0 9 * * mon,wed,fri", "UTC", "at 09:00 on Mondays, Wednesdays and Fridays (UTC)"),
        ("0 9 * * tue-thu", "UTC", "at 09:00 from Tuesday to Thursday (UTC)"),
        ("0 9 1 * *", PARIS, "at 09:00 on the 1st of the month (Europe/Paris)"),
        ("0 9 2 * *", "UTC", "at 09:00 on the 2nd of the month (UTC)"),
        ("0 9 3 * *", "UTC", "at 09:00 on the 3rd of the month (UTC)"),
        ("0 9 15 * *", "UTC", "at 09:00 on the 15th of the month (UTC)"),
        ("0 9 22 * *", "UTC", "at 09:00 on the 22nd of the month (UTC)"),
        ("*/5 * * * *", "UTC", "every 5 minutes (UTC)"),
        ("*/1 * * * *", "UTC", "every minute (UTC)"),
        ("* * * * *", "UTC", "every minute (UTC)"),
        ("15 * * * *", "UTC", "every hour at 15 minutes past (UTC)"),
    ],
)
def test_common_cron_shapes_in_words(crontab: str, zone: str, words: str) -> None:
    assert trigger_words(CronTrigger.from_crontab(crontab, timezone=zone)) == words


@pytest.mark.parametrize(
    ("crontab", "zone"),
    [
        ("30 2 * * 1-5", PARIS),  # numbers: APScheduler's 0 is Monday, crontab's is Sunday
        ("0 0 1 1 *", "UTC"),  # a month
        ("*/7 9-17 * * *", "UTC"),  # a step within hours
        ("0 9-17 * * *", "UTC"),  # an hour range
        ("0 9 1,15 * *", "UTC"),  # two days of the month
        ("0 9 1 * mon", "UTC"),  # a day of the month and of the week (either, in cron)
        ("0 9 * * mon-wed,fri", "UTC"),  # a range within a list
        ("0 9 last * *", "UTC"),
        ("*/15 2 * * *", "UTC"),
    ],
)
def test_other_cron_expressions_are_shown_as_written(crontab: str, zone: str) -> None:
    assert trigger_words(CronTrigger.from_crontab(crontab, timezone=zone)) == (
        f"cron: {crontab} ({zone})"
    )


def test_seconds_weeks_and_years_are_not_left_out() -> None:
    every_ten = CronTrigger(second="*/10", timezone="UTC")
    assert trigger_words(every_ten) == "cron: * * * * * (UTC), second */10"
    yearly = CronTrigger(year="2030", month=1, day=1, hour=0, minute=0, timezone="UTC")
    assert trigger_words(yearly) == "cron: 0 0 1 1 * (UTC), year 2030"
    weekly = CronTrigger(week="1", hour=3, minute=0, timezone="UTC")
    assert trigger_words(weekly) == "cron: 0 3 * * * (UTC), week 1"


def test_crontab_of_leaves_out_seconds_and_years() -> None:
    assert crontab_of(CronTrigger.from_crontab("30 2 * * mon-fri")) == "30 2 * * mon-fri"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"minutes": 5}, "every 5 minutes"),
        ({"minutes": 1}, "every minute"),
        ({"seconds": 30}, "every 30 seconds"),
        ({"hours": 1}, "every hour"),
        ({"hours": 2}, "every 2 hours"),
        ({"minutes": 90}, "every 1 hour and 30 minutes"),
        ({"days": 1}, "every day"),
        ({"weeks": 1}, "every week"),
        ({"weeks": 2, "days": 1}, "every 2 weeks and 1 day"),
        ({"hours": 1, "minutes": 1, "seconds": 1}, "every 1 hour, 1 minute and 1 second"),
    ],
)
def test_intervals_in_words(fields: dict[str, int], words: str) -> None:
    assert trigger_words(IntervalTrigger(**fields)) == words  # type: ignore[arg-type]


def test_a_date_is_once() -> None:
    when = datetime(2030, 1, 31, 2, 30, tzinfo=UTC)
    assert trigger_words(DateTrigger(when)) == "once at 2030-01-31 02:30:00+00:00"


def test_shown_time_is_to_the_second() -> None:
    when = datetime(2030, 1, 31, 2, 30, 5, 123456, tzinfo=UTC) + timedelta(0)
    assert shown_time(when) == "2030-01-31 02:30:05+00:00"
    assert shown_time(None) == ""
