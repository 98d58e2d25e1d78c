"""Job operations over one APScheduler scheduler; APScheduler's errors are translated here, once.

Every change is validated whole before the store is touched, and written with one store call,
so a request applies fully or not at all.

Size: ``JobService`` is the one way every job operation goes (list, page, get, add, modify,
pause, resume, remove, run, upsert), each a few lines around one store call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from blinker import Namespace
from flask import current_app, has_app_context
from sqlalchemy.exc import SQLAlchemyError

from ..errors import BadRequest, Conflict, NotFound, ServiceError, ServiceUnavailable
from ..runs.recorder import HistoryUnavailable
from ..runs.service import count_open_runs
from ..stores import connection_errors, may_hold, pager
from .horizon import first_fire_time
from .policy import policy_of, with_policy
from .resolve import resolve_job, resolve_options
from .serialize import job_to_dict, trigger_to_dict
from .specs import (
    ALL_TRIGGER_FIELDS,
    CRON_FIELDS,
    INTERVAL_UNITS,
    OPTION_FIELDS,
    JobContext,
    JobSpec,
    normalize,
    parse_spec,
    policy_from,
)
from .triggers import build_trigger
from .upstream import job_defaults, store_alias


class RunRequests(Protocol):
    """What the job service needs of the run lifecycle (firing/lifecycle.py) for manual runs:
    the domain asks the engine through this, and never imports it."""

    def request(self, job: Job, *, trigger: str) -> int:
        """Record a pending run of ``job`` for the leader to take; return its id."""
        ...

    def refuse(self, job: Job, *, reason: str) -> None:
        """Record a run refused at once as skipped."""
        ...


log = logging.getLogger(__name__)

# Sent when a job store fails a call (metrics count these).
store_error = Namespace().signal("store-error")

_TRIGGER_KEYS = ALL_TRIGGER_FIELDS | {"trigger"}
_DEFAULTED = ("misfire_grace_time", "max_instances", "coalesce")


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Turn a job store's connection errors into 503, naming no secret."""
    try:
        yield
    except ServiceError:
        raise
    except Exception as exc:
        if not isinstance(exc, connection_errors()):
            raise
        log.warning("job store unavailable: %s", type(exc).__name__)
        if has_app_context():
            store_error.send(current_app._get_current_object(), kind="api")  # type: ignore[attr-defined]
        raise ServiceUnavailable(f"the job store is unavailable ({type(exc).__name__})") from None


class JobService:
    """Add, list, change, pause, resume, remove and run jobs of one scheduler."""

    def __init__(
        self,
        scheduler: BaseScheduler,
        context: JobContext,
        *,
        lifecycle: RunRequests | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.context = context
        self.lifecycle = lifecycle

    def _now(self) -> datetime:
        return datetime.now(self.context.timezone)

    def _require_running(self) -> None:
        if self.scheduler.state == STATE_STOPPED:
            raise Conflict("the scheduler is shut down; POST /scheduler/start first")

    def list_jobs(
        self,
        *,
        jobstore: str | None = None,
        trigger: str | None = None,
        paused: bool | None = None,
    ) -> list[Job]:
        """Return jobs, soonest first per store, filtered as asked."""
        self._require_running()
        if jobstore is not None and jobstore not in self.context.jobstores:
            raise NotFound(f"no job store {jobstore!r}")
        with store_errors():
            jobs = self.scheduler.get_jobs(jobstore)
        order = {alias: i for i, alias in enumerate(self.context.jobstores)}
        jobs = sorted(
            (j for j in jobs if store_alias(j) in order),
            key=lambda j: (order[store_alias(j)], *_soonest_first(j)),
        )
        if trigger is not None:
            jobs = [j for j in jobs if trigger_to_dict(j.trigger)["trigger"] == trigger]
        if paused is not None:
            jobs = [j for j in jobs if (j.next_run_time is None) == paused]
        return jobs

    def list_page(
        self,
        *,
        jobstore: str | None = None,
        trigger: str | None = None,
        paused: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[Job], int]:
        """One page of the jobs ``list_jobs`` returns, and how many there are in all.

        Read at the stores (only the page is unpickled) unless a trigger filter, or a store
        without a fast path, needs every job read.
        """
        aliases = [jobstore] if jobstore is not None else list(self.context.jobstores)
        self._require_running()
        if jobstore is not None and jobstore not in self.context.jobstores:
            raise NotFound(f"no job store {jobstore!r}")
        pagers = [pager(self.scheduler._lookup_jobstore(alias)) for alias in aliases]
        if trigger is not None or None in pagers:
            jobs = self.list_jobs(jobstore=jobstore, trigger=trigger, paused=paused)
            end = None if limit is None else offset + limit
            return jobs[offset:end], len(jobs)
        page: list[Job] = []
        total = 0
        with store_errors():
            for store_pager in pagers:
                assert store_pager is not None
                count = store_pager.total(paused)
                start = max(0, offset - total)
                wanted = count - start if limit is None else limit - len(page)
                if wanted > 0 and start < count:
                    page += store_pager.page(paused, start, wanted)
                total += count
        return page, total

    def get_job(self, job_id: str) -> Job:
        """Return one job.

        :raises NotFound: no job has this id.
        """
        self._require_running()
        with store_errors():
            for alias in self._stores_that_may_hold(job_id):
                job = self.scheduler.get_job(job_id, alias)
                if job is not None:
                    return job
        raise NotFound(f"Job {job_id} not found")

    def _stores_that_may_hold(self, job_id: str) -> list[str]:
        """The aliases of the stores where a job could have this id (one that a store cannot
        hold makes some drivers raise, where it is simply not there)."""
        return [
            alias
            for alias in self.context.jobstores
            if may_hold(self.scheduler._lookup_jobstore(alias), job_id)
        ]

    def add_job(self, data: Any) -> Job:
        """Validate and add a job; replace an existing one only when asked to.

        :raises Conflict: the id is taken (in any store) and replace_existing is not set.
        """
        spec = parse_spec(data, self.context)
        options = resolve_job(spec, self.context, now=self._now())
        self._require_running()
        store = options.get("jobstore", "default")
        with store_errors():
            # With one store, its own unique id is the check: no read before the write.
            if len(self.context.jobstores) > 1:
                self._check_id_elsewhere(spec.id, store)
            try:
                return self.scheduler.add_job(**options, replace_existing=spec.replace_existing)
            except ConflictingIdError:
                raise Conflict(f"Job {spec.id} already exists.") from None

    def _check_id_elsewhere(self, job_id: str, store: str) -> None:
        """Refuse an id that another of several stores holds (a store checks only its own)."""
        for alias in self.context.jobstores:
            if alias != store and self.scheduler.get_job(job_id, alias) is not None:
                raise Conflict(f"Job {job_id} already exists.")

    def modify_job(self, job_id: str, patch: Any) -> Job:
        """Apply a partial change, validated whole against the merged job, in one store write.

        :raises NotFound: no job has this id.
        """
        if not isinstance(patch, dict):
            raise BadRequest("the body must be a JSON object")
        forbidden = {k: "cannot be changed" for k in ("id", "replace_existing") if k in patch}
        if forbidden:
            raise BadRequest("the job is not valid", errors=forbidden)
        job = self.get_job(job_id)
        patch = normalize(patch)
        if patch.get("jobstore", store_alias(job)) != store_alias(job):
            raise BadRequest(
                "a job cannot move between stores; delete it and add it again",
                errors={"jobstore": "cannot be changed"},
            )
        merged = merge_patch(job_to_dict(job), patch)
        spec = parse_spec(merged, self.context, stored_id=job.id)
        changes = self._changes(job, spec, trigger_touched=bool(set(patch) & _TRIGGER_KEYS))
        if "next_run_time" in patch:
            options = resolve_options(spec, self.context, now=self._now())
            changes["next_run_time"] = options["next_run_time"]
        with store_errors():
            try:
                self.scheduler.modify_job(job_id, store_alias(job), **changes)
            except JobLookupError:
                raise NotFound(f"Job {job_id} not found") from None
        return self.get_job(job_id)

    def _changes(self, job: Job, spec: JobSpec, *, trigger_touched: bool) -> dict[str, Any]:
        options = resolve_options(spec, self.context, now=self._now())
        changes = {k: options[k] for k in OPTION_FIELDS if k in options}
        policy = policy_from(spec)
        if trigger_touched:
            trigger, first = build_trigger(spec, self.context, now=self._now())
            changes["trigger"] = with_policy(trigger, policy)
            if job.next_run_time is not None:  # a paused job stays paused
                changes["next_run_time"] = first
        elif policy != policy_of(job.trigger):  # same schedule, new retries or timeout
            changes["trigger"] = with_policy(job.trigger, policy)
        return changes

    def pause_job(self, job_id: str) -> Job:
        """Pause a job: it keeps its schedule but does not fire until resumed."""
        job = self.get_job(job_id)
        with store_errors():
            self.scheduler.pause_job(job_id, store_alias(job))
        return self.get_job(job_id)

    def resume_job(self, job_id: str) -> Job:
        """Resume a paused job from its next fire time after now (looked for once, bounded:
        APScheduler's resume_job would look again, to the year 9999, under its store lock).

        :raises Conflict: its trigger has no fire time left, or none within the horizon
            (APScheduler would delete it).
        """
        job = self.get_job(job_id)
        first = first_fire_time(job.trigger, self._now())
        if first is None:
            raise Conflict(f"Job {job_id} has no fire time left; delete it or change its trigger")
        with store_errors():
            self.scheduler.modify_job(job_id, store_alias(job), next_run_time=first)
        return self.get_job(job_id)

    def remove_job(self, job_id: str) -> None:
        """Remove a job, with one store call per store until one holds it.

        :raises NotFound: no job has this id.
        """
        self._require_running()
        with store_errors():
            for alias in self._stores_that_may_hold(job_id):
                try:
                    self.scheduler.remove_job(job_id, alias)
                    return
                except JobLookupError:
                    continue
        raise NotFound(f"Job {job_id} not found")

    def run_job(self, job_id: str) -> int:
        """Request one run of the job now, for the firing leader to take (it runs outside
        the request thread, on whichever replica leads, even while the scheduler is paused).

        :returns: the id of the recorded run (pending until the leader takes it).
        :raises Conflict: the job already has max_instances runs open (the refusal is
            recorded as a skipped run).
        :raises ServiceUnavailable: the service database did not take the request.
        :raises Conflict: the scheduler of this process is shut down.
        """
        self._require_running()  # a shut-down process takes no requests to run
        job = self.get_job(job_id)
        if self.lifecycle is None:
            raise ServiceUnavailable("this scheduler records no runs")
        try:
            if count_open_runs(job.id) >= job.max_instances:
                reason = f"Job {job_id} is already running {job.max_instances} time(s)"
                self.lifecycle.refuse(job, reason=f"{reason} (max_instances)")
                raise Conflict(f"{reason} (max_instances)")
            return self.lifecycle.request(job, trigger="manual")
        except (HistoryUnavailable, SQLAlchemyError):
            raise ServiceUnavailable("the service database is unavailable") from None

    def upsert_job(self, spec: JobSpec) -> str:
        """Add a declared job, or bring a stored one in line with it; keep its schedule when
        its trigger did not change, and keep it paused if an operator paused it. Replicas may
        upsert the same job at once: one adds it, the others update what it added.

        :returns: "added", "updated" or "unchanged".
        """
        options = resolve_job(spec, self.context, now=self._now())
        with store_errors():
            existing = self.scheduler.get_job(spec.id)
            if existing is None:
                try:
                    self.scheduler.add_job(**options)
                    return "added"
                except ConflictingIdError:  # another process added it since we looked
                    existing = self.scheduler.get_job(spec.id)
                    if existing is None:  # ... and removed it again: give up
                        raise
            changes = self._declared_changes(existing, spec, options)
            if not changes:
                return "unchanged"
            self.scheduler.modify_job(spec.id, store_alias(existing), **changes)
            return "updated"

    def _declared_changes(self, job: Job, spec: JobSpec, options: dict[str, Any]) -> dict:
        # Options the declaration leaves out take the scheduler's job defaults.
        wanted = {"executor": "default", **job_defaults(self.scheduler), **options}
        current = job_to_dict(job)
        changes = {f: wanted[f] for f in OPTION_FIELDS if wanted[f] != current[f]}
        old, new = trigger_to_dict(job.trigger), trigger_to_dict(options["trigger"])
        if spec.start_date is None:  # an interval's start_date defaults to "now": not a change
            old.pop("start_date", None)
            new.pop("start_date", None)
        if old != new:
            changes["trigger"] = options["trigger"]
            if job.next_run_time is not None:
                changes["next_run_time"] = first_fire_time(options["trigger"], self._now())
        elif policy_of(options["trigger"]) != policy_of(job.trigger):
            changes["trigger"] = with_policy(job.trigger, policy_of(options["trigger"]))
        return changes


def _soonest_first(job: Job) -> tuple[bool, float, str]:
    """A store's order: scheduled jobs by run time then id, then paused jobs by id (as the
    store-level pages of ``stores.pager`` list them)."""
    when = job.next_run_time
    return (when is None, 0.0 if when is None else when.timestamp(), job.id)


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge a PATCH body into the job's JSON.

    Trigger fields merge with the current trigger's when the trigger type stays the same,
    except that interval units replace each other as a group, and so do cron fields and a
    crontab line; a new trigger type starts from the patch's fields alone. A field set to
    null is removed.
    """
    merged = {k: v for k, v in current.items() if k != "next_run_time"}
    if "trigger" in patch and patch["trigger"] != current.get("trigger"):
        for key in ALL_TRIGGER_FIELDS:
            merged.pop(key, None)
    if set(patch) & set(INTERVAL_UNITS):
        for key in INTERVAL_UNITS:
            merged.pop(key, None)
    if set(patch) & (set(CRON_FIELDS) | {"crontab"}):
        for key in (*CRON_FIELDS, "crontab"):
            merged.pop(key, None)
    merged.update(patch)
    return {k: v for k, v in merged.items() if not (v is None and k in _TRIGGER_KEYS)}
