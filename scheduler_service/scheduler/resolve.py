"""Resolve a valid job spec in the scheduler's context (allowed functions and their
arguments, store and executor aliases, the trigger) into ``BaseScheduler.add_job``'s
keyword arguments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import ValidationFailed
from .callables import ArgumentsRefused, CallableRefused, check_arguments, resolve_callable
from .policy import with_policy
from .secretrefs import check_references, is_reference
from .specs import JobContext, JobSpec, policy_from
from .triggers import build_trigger, check_not_too_late, grace_of, job_zone, parse_datetime


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
            when = parse_datetime(spec.next_run_time, "next_run_time", job_zone(spec, ctx))
            check_not_too_late(when, "next_run_time", grace=grace_of(spec, ctx), now=now)
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
