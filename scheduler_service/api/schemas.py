"""What the job API reads from query strings and answers, as pydantic models.

Request bodies are validated by ``JobSpec`` (scheduler/specs.py); the PATCH body schema is
derived from it. The answer models describe the JSON the views write (they are checked against
real answers by tests/test_openapi.py); the query models validate query strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ..openapi import partial_model
from ..runs.models import RUN_STATES
from ..scheduler.specs import JobSpec

Trigger = Literal["date", "interval", "cron"]
RunState = Literal[RUN_STATES]  # type: ignore[valid-type]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Every field of a job but the two a PATCH may not send; null removes a trigger field.
JobPatch = partial_model(JobSpec, name="JobPatch", exclude=("id", "replace_existing"))


class ShutdownBody(BaseModel):
    """Options of POST /scheduler/shutdown."""

    model_config = ConfigDict(extra="forbid")

    wait: StrictBool = Field(True, description="wait for running jobs to finish")


# -- query strings -------------------------------------------------------------------------------


MAX_OFFSET = 2**31 - 1  # a bigger OFFSET overflows some databases' integer


class PageQuery(BaseModel):
    """A page of a list."""

    limit: Annotated[int, Field(ge=1, description="at most SCHEDULER_MAX_PAGE_SIZE")] | None = None
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0


class JobListQuery(PageQuery):
    """Filters of GET /scheduler/jobs."""

    jobstore: Annotated[str, Field(description="a configured job store alias")] | None = None
    trigger: Trigger | None = None
    paused: bool | None = None


class RunListQuery(PageQuery):
    """Filters of the run history, newest first."""

    limit: Annotated[int, Field(ge=1, description="at most SCHEDULER_MAX_PAGE_SIZE")] = 50
    state: RunState | None = None
    since: Annotated[datetime, Field(description="scheduled at or after (UTC if naive)")] | None = (
        None
    )
    until: Annotated[datetime, Field(description="scheduled before (UTC if naive)")] | None = None


class AllRunsQuery(RunListQuery):
    """Filters of GET /scheduler/runs."""

    job_id: str | None = None


MAX_WAIT = 300  # seconds a ?wait= may ask for


class RunNowQuery(BaseModel):
    """Options of POST /scheduler/jobs/<id>/run."""

    wait: Annotated[
        int, Field(ge=0, le=MAX_WAIT, description="seconds to wait for the run's outcome")
    ] = 0


# -- answers -------------------------------------------------------------------------------------


class JobOut(_Out):
    """A job, in Flask-APScheduler's shape plus the service's keys (SPEC §3)."""

    id: str
    name: str
    func: str
    args: list[Any]
    kwargs: dict[str, Any]
    trigger: Trigger
    run_date: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    weeks: int | None = None
    days: int | None = None
    hours: int | None = None
    minutes: int | None = None
    seconds: int | None = None
    year: str | None = None
    month: str | None = None
    day: str | None = None
    week: str | None = None
    day_of_week: str | None = None
    hour: str | None = None
    minute: str | None = None
    second: str | None = None
    timezone: str | None = None
    jitter: float | None = None
    misfire_grace_time: int | None
    max_instances: int
    next_run_time: datetime | None
    coalesce: bool
    jobstore: str
    executor: str
    retries: int
    retry_delay: float
    timeout: float | None


class RunOut(_Out):
    """One run of a job (SPEC §6)."""

    id: int
    job_id: str
    job_name: str | None
    func: str | None
    trigger: Literal["schedule", "manual"]
    state: RunState
    executor: str | None
    attempt: int
    scheduled_run_time: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    host: str | None
    pid: int | None
    error: str | None
    traceback: str | None
    result: Any
    result_truncated: bool
    log: str | None
    log_truncated: bool
    boot: str | None = Field(description="the process start that held the run")
    replica: str | None = Field(description="the replica that decided the run")
    coalesced_into: int | None = Field(description="coalesced: the run this instant joined")
    not_before: datetime | None = Field(description="pending: when the run may be taken")
    no_leader: bool = Field(description="due before the deciding replica began firing")


class FireListQuery(PageQuery):
    """A window of a job's fire ledger, newest first."""

    limit: Annotated[int, Field(ge=1, description="at most SCHEDULER_MAX_PAGE_SIZE")] = 50
    since: Annotated[datetime, Field(description="due at or after (UTC if naive)")] | None = None
    until: Annotated[datetime, Field(description="due before (UTC if naive)")] | None = None


class FireAttempt(_Out):
    """A later attempt (retry) of a fire."""

    run_id: int
    attempt: int
    state: RunState


class FireOut(_Out):
    """One due instant of a job and what became of it (SPEC §6, the fire ledger)."""

    scheduled_run_time: datetime
    outcome: Literal["run", "coalesced", "missed", "skipped", "skipped_duplicate"]
    run_id: int
    state: RunState
    coalesced_into: int | None
    decided_by: str | None
    host: str | None
    no_leader: bool
    late_by: float | None = Field(description="seconds between the instant and its start")
    error: str | None
    attempts: list[FireAttempt]


class ReplicaOut(_Out):
    """One process of the service and its heartbeat."""

    replica_id: str
    boot: str
    host: str
    pid: int
    role: Literal["leader", "follower"]
    started_at: datetime
    last_heartbeat: datetime
    version: str | None
    alive: bool


class ClusterOut(_Out):
    """The replicas sharing the service database, and whether firing is paused for all."""

    paused: bool
    leader_id: str | None
    replicas: list[ReplicaOut]


class JobstoreInfo(BaseModel):
    """A job store: alias, type, and where it is (no password)."""

    model_config = ConfigDict(extra="allow")

    alias: str
    type: str


class ExecutorInfo(_Out):
    """An executor: pool type and size."""

    type: Literal["threadpool", "processpool"]
    max_workers: int | None


class SchedulerInfo(_Out):
    """Flask-APScheduler's scheduler info plus the service's extras."""

    current_host: str
    allowed_hosts: list[str]
    running: bool
    state: Literal["stopped", "running", "paused"]
    firing: bool
    timezone: str
    jobstores: list[JobstoreInfo]
    executors: dict[str, ExecutorInfo]
    version: str
    replica_id: str = Field(description="This process's name (SCHEDULER_REPLICA_ID)")
    role: Literal["leader", "follower"] = Field(
        description="leader: this replica fires jobs; follower: it serves the API only"
    )
    coordination: Literal["none", "zookeeper", "redis", "postgresql"]
    leader_id: str | None = Field(description="The replica that fires jobs, when known")
    lease_remaining_s: float | None = Field(
        description="Seconds this leader may still fire without renewing its lease"
    )


class TaskParameter(_Out):
    """One parameter of a schedulable function."""

    name: str
    kind: Literal[
        "positional_only", "positional_or_keyword", "var_positional", "keyword_only", "var_keyword"
    ]
    type: str | None = None
    default: Any = None
    json_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="The JSON Schema of the values it takes, constraints included; what "
        "a job's argument must fit (absent for a type JSON cannot carry)",
    )


class Task(_Out):
    """A function that may be scheduled."""

    func: str
    signature: str
    doc: str
    parameters: list[TaskParameter]
