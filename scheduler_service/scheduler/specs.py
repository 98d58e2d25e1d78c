"""The one job validator, for config-declared and API-submitted jobs alike.

``JobSpec`` checks the JSON shape (types, unknown fields); ``resolve_job`` then checks what
needs the scheduler's context (allowed functions, aliases, trigger arguments) and returns the
keyword arguments for ``BaseScheduler.add_job``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ..errors import Unprocessable, ValidationFailed, validation_errors
from .callables import ArgumentsRefused, CallableRefused, check_arguments, resolve_callable
from .horizon import HORIZON_YEARS, first_fire_time, never_fires_after, search_start
from .limits import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    ID_RULE,
    MAX_ARGS_BYTES,
    MAX_ARGS_DEPTH,
    check_json_bounds,
    is_new_id,
)
from .policy import RunPolicy, with_policy
from .secretrefs import check_references, is_reference

INTERVAL_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
TRIGGER_FIELDS: dict[str, tuple[str, ...]] = {
    "date": ("run_date", "timezone"),
    "interval": (*INTERVAL_UNITS, "start_date", "end_date", "timezone", "jitter"),
    "cron": (*CRON_FIELDS, "crontab", "start_date", "end_date", "timezone", "jitter"),
}
ALL_TRIGGER_FIELDS = frozenset(f for fields in TRIGGER_FIELDS.values() for f in fields)
DATE_FIELDS = ("run_date", "start_date", "end_date", "next_run_time")
# Job options that APScheduler's modify_job accepts, besides the trigger.
POLICY_FIELDS = ("retries", "retry_delay", "timeout")
OPTION_FIELDS = (
    "name",
    "func",
    "args",
    "kwargs",
    "misfire_grace_time",
    "max_instances",
    "coalesce",
    "executor",
)

# Durations stop at a thousand years: far beyond any schedule, and well inside what datetime
# arithmetic holds (a bigger number would overflow it: a 500, not a 400).
MAX_SPAN = 1000 * 366 * 86400  # seconds
Weeks = Annotated[StrictInt, Field(ge=0, le=MAX_SPAN // 604_800)]
Days = Annotated[StrictInt, Field(ge=0, le=MAX_SPAN // 86_400)]
Hours = Annotated[StrictInt, Field(ge=0, le=MAX_SPAN // 3_600)]
Minutes = Annotated[StrictInt, Field(ge=0, le=MAX_SPAN // 60)]
Seconds = Annotated[StrictInt, Field(ge=0, le=MAX_SPAN)]
Jitter = Annotated[StrictInt, Field(ge=0, le=366 * 86400)]
CronValue = StrictInt | Annotated[str, Field(min_length=1, max_length=100)]
DateText = Annotated[
    str,
    Field(
        max_length=64,
        description="ISO 8601 (or 'YYYY-MM-DD HH:MM:SS'); in the trigger's timezone if naive",
        json_schema_extra={"format": "date-time"},
    ),
]


_ARGUMENTS = (
    "argument values, checked against the function's parameters (GET /scheduler/tasks shows "
    'their JSON Schema); a value {"secret": "ENV_NAME"} is a secret reference, resolved from '
    "the environment when the run starts (SCHEDULER_JOB_SECRETS says which variables); "
    f"at most {MAX_ARGS_DEPTH} levels deep and {MAX_ARGS_BYTES} bytes as JSON"
)


def _omit_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _not_null() -> Any:
    """Declare a field that may be left out (then the default applies) but is never null:
    APScheduler has no "no value" for it."""
    return Field(default=None, json_schema_extra=_omit_default)


class JobSpec(BaseModel):
    """A job as JSON, in Flask-APScheduler's shape (SPEC §3)."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=191,  # ids stored before the alphabet; a new id is 127 at most
            description=f"{ID_RULE}; ids starting with '__' are the service's own",
            json_schema_extra={"pattern": ID_PATTERN, "maxLength": ID_MAX_LENGTH},
        ),
    ]
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    func: Annotated[str, Field(max_length=200)]
    args: list[Any] = Field(default_factory=list, description=_ARGUMENTS)
    kwargs: dict[str, Any] = Field(default_factory=dict, description=_ARGUMENTS)
    trigger: Literal["date", "interval", "cron"]
    run_date: DateText | None = None
    weeks: Weeks | None = None
    days: Days | None = None
    hours: Hours | None = None
    minutes: Minutes | None = None
    seconds: Seconds | None = None
    start_date: DateText | None = None
    end_date: DateText | None = None
    timezone: Annotated[str, Field(max_length=64, description="an IANA time zone name")] | None = (
        None
    )
    jitter: Jitter | None = None
    year: CronValue | None = None
    month: CronValue | None = None
    day: CronValue | None = None
    week: CronValue | None = None
    day_of_week: CronValue | None = None
    hour: CronValue | None = None
    minute: CronValue | None = None
    second: CronValue | None = None
    crontab: Annotated[str, Field(max_length=200)] | None = None
    misfire_grace_time: Annotated[StrictInt, Field(ge=1, le=MAX_SPAN)] | None = None
    retries: Annotated[StrictInt, Field(ge=0, le=10)] | None = None
    retry_delay: Annotated[float, Field(ge=0, le=86400)] | None = None
    timeout: Annotated[float, Field(gt=0, le=604800)] | None = None
    max_instances: Annotated[StrictInt, Field(ge=1, le=1000)] = _not_null()
    coalesce: StrictBool = _not_null()
    next_run_time: DateText | None = None
    jobstore: Annotated[str, Field(min_length=1)] = _not_null()
    executor: Annotated[str, Field(min_length=1)] = _not_null()
    replace_existing: StrictBool = False

    @field_validator("id")
    @classmethod
    def _id_alphabet(cls, value: str, info: ValidationInfo) -> str:
        if value.startswith("__"):
            raise ValueError("ids starting with '__' are reserved for the service's own jobs")
        stored = (info.context or {}).get("stored_id")
        if not is_new_id(value) and value != stored:  # a PATCH keeps the stored id as is
            raise ValueError(f"use {ID_RULE}")
        return value

    @field_validator("args", "kwargs")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        check_json_bounds(value)
        return value


@dataclass(frozen=True)
class JobContext:
    """What validation needs to know about the running service."""

    allowed_modules: tuple[str, ...]
    jobstores: tuple[str, ...]
    executors: tuple[str, ...]
    timezone: ZoneInfo
    # The environment variables a job argument may reference (SCHEDULER_JOB_SECRETS).
    secret_patterns: tuple[str, ...] = ("JOB_SECRET_*",)
    misfire_grace_time: int | None = 60  # the job default (SCHEDULER_JOB_DEFAULTS); None: any


def normalize(data: Any) -> Any:
    """Accept Flask-APScheduler's legacy nested trigger ``{"trigger": {"type": "cron", ...}}``."""
    if isinstance(data, dict) and isinstance(data.get("trigger"), dict):
        data = dict(data)
        trigger = dict(data.pop("trigger"))
        data["trigger"] = trigger.pop("type", "date")
        for key, value in trigger.items():
            data.setdefault(key, value)
    return data


def parse_spec(data: Any, ctx: JobContext, *, stored_id: str | None = None) -> JobSpec:
    """Validate the JSON shape of a job; ``stored_id`` is the id of the stored job a PATCH
    changes (kept even if it predates the id alphabet).

    :raises ValidationFailed: with one entry per bad field.
    """
    data = normalize(data)
    try:
        return JobSpec.model_validate(data, context={"stored_id": stored_id})
    except ValidationError as exc:
        errors = validation_errors(exc)
    # Name a refused function even when other fields are wrong too: the likelier mistake.
    func = data.get("func") if isinstance(data, dict) else None
    if isinstance(func, str) and "func" not in errors:
        try:
            resolve_callable(func, ctx.allowed_modules)
        except CallableRefused as refused:
            errors["func"] = str(refused)
    raise ValidationFailed("the job is not valid", errors=errors)


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


def _zone(spec: JobSpec, ctx: JobContext) -> ZoneInfo:
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
    tz = _zone(spec, ctx)
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
        check_not_too_late(dates["run_date"], "run_date", grace=_grace(spec, ctx), now=now)
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


def _grace(spec: JobSpec, ctx: JobContext) -> int | None:
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


def _check_func(spec: JobSpec, ctx: JobContext) -> None:
    """Check the function, then its arguments: secret references, and every other value
    against the function's annotations (a referenced value is checked when it runs)."""
    try:
        func = resolve_callable(spec.func, ctx.allowed_modules)
    except CallableRefused as exc:
        raise ValidationFailed("the job is not valid", errors={"func": str(exc)}) from None
    errors = check_references(spec.args, spec.kwargs, patterns=ctx.secret_patterns)
    try:
        check_arguments(func, spec.args, spec.kwargs, skip=is_reference)
    except ArgumentsRefused as exc:
        errors = {**exc.errors, **errors}
        if "args" in errors:  # they do not bind: say to which function
            errors["args"] = f"{spec.func}: {errors['args']}"
    if errors:
        raise ValidationFailed(f"the arguments do not fit {spec.func}", errors=errors)


def _check_aliases(spec: JobSpec, ctx: JobContext) -> None:
    errors = {}
    if spec.jobstore is not None and spec.jobstore not in ctx.jobstores:
        errors["jobstore"] = f"unknown job store; configured: {', '.join(ctx.jobstores)}"
    if spec.executor is not None and spec.executor not in ctx.executors:
        errors["executor"] = f"unknown executor; configured: {', '.join(ctx.executors)}"
    if errors:
        raise ValidationFailed("the job is not valid", errors=errors)


def resolve_options(spec: JobSpec, ctx: JobContext, *, now: datetime) -> dict[str, Any]:
    """Check the function and aliases; return the job's options as ``add_job`` keywords.

    A ``next_run_time`` in the past is kept as given up to the job's misfire_grace_time back
    (the job fires at once, as in Flask-APScheduler); further back it is refused (422).
    """
    _check_func(spec, ctx)
    _check_aliases(spec, ctx)
    options: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name or spec.id,
        "func": spec.func,
        "args": list(spec.args),
        "kwargs": dict(spec.kwargs),
    }
    for field in ("misfire_grace_time", "max_instances", "coalesce", "jobstore", "executor"):
        if field in spec.model_fields_set:
            options[field] = getattr(spec, field)
    if "next_run_time" in spec.model_fields_set:
        options["next_run_time"] = None
        if spec.next_run_time is not None:
            when = parse_datetime(spec.next_run_time, "next_run_time", _zone(spec, ctx))
            check_not_too_late(when, "next_run_time", grace=_grace(spec, ctx), now=now)
            options["next_run_time"] = when
    return options


def resolve_job(spec: JobSpec, ctx: JobContext, *, now: datetime) -> dict[str, Any]:
    """Validate ``spec`` whole and return keyword arguments for ``BaseScheduler.add_job``,
    ``next_run_time`` included (None: paused).

    :raises ValidationFailed: 400, with the bad fields.
    :raises Unprocessable: 422, a well-formed but impossible schedule.
    """
    options = resolve_options(spec, ctx, now=now)
    trigger, first = build_trigger(spec, ctx, now=now)
    options["trigger"] = with_policy(trigger, policy_from(spec))
    # Given to add_job, so that APScheduler does not look for it again (unbounded for a cron,
    # under its store lock).
    options.setdefault("next_run_time", first)
    return options


def policy_from(spec: JobSpec) -> RunPolicy:
    """Return the run policy a spec asks for (defaults for what it leaves out)."""
    given = {f: getattr(spec, f) for f in POLICY_FIELDS if getattr(spec, f) is not None}
    return RunPolicy(**given)


def trigger_fields_of(spec: JobSpec) -> dict[str, Any]:
    """Return the trigger fields ``spec`` sets, ``trigger`` included."""
    fields = {f: getattr(spec, f) for f in ALL_TRIGGER_FIELDS if getattr(spec, f) is not None}
    fields["trigger"] = spec.trigger
    return fields
