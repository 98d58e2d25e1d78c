"""The one job validator, for config-declared and API-submitted jobs alike.

``JobSpec`` checks the JSON shape (types, unknown fields); ``resolve_job`` (resolve.py) then
checks what needs the scheduler's context (allowed functions, aliases, trigger arguments,
with triggers.py) and returns the keyword arguments for ``BaseScheduler.add_job``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

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

from ..errors import ValidationFailed, validation_errors
from .callables import CallableRefused, resolve_callable
from .limits import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    ID_RULE,
    MAX_ARGS_BYTES,
    MAX_ARGS_DEPTH,
    check_json_bounds,
    is_new_id,
)
from .policy import RunPolicy

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


def policy_from(spec: JobSpec) -> RunPolicy:
    """Return the run policy a spec asks for (defaults for what it leaves out)."""
    given = {f: getattr(spec, f) for f in POLICY_FIELDS if getattr(spec, f) is not None}
    return RunPolicy(**given)


def trigger_fields_of(spec: JobSpec) -> dict[str, Any]:
    """Return the trigger fields ``spec`` sets, ``trigger`` included."""
    fields = {f: getattr(spec, f) for f in ALL_TRIGGER_FIELDS if getattr(spec, f) is not None}
    fields["trigger"] = spec.trigger
    return fields
