"""Run history routes (SPEC §6): what every run of every job did."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify

from ..auth import require_role
from ..control import get_job_service
from ..errors import BadRequest, NotFound
from ..openapi import describe
from ..runs.ledger import list_fires
from ..runs.service import get_run, list_runs, wait_for_outcome
from ..web import check_at_most, query_args
from .schemas import AllRunsQuery, FireListQuery, FireOut, RunListQuery, RunNowQuery, RunOut

bp = Blueprint("runs", __name__)

MAX_RUN_ID = 2**31 - 1  # run ids are 32-bit integers on every database


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise BadRequest(
            f"query parameter {name!r} is out of range",
            errors={name: "outside the years 1 to 9999 in UTC"},
        ) from None


def _runs_page(job_id: str | None, query: RunListQuery) -> Response:
    check_at_most("limit", query.limit, current_app.config["SCHEDULER_MAX_PAGE_SIZE"])
    runs, total = list_runs(
        job_id=job_id,
        state=query.state,
        since=_utc("since", query.since),
        until=_utc("until", query.until),
        limit=query.limit or 50,
        offset=query.offset,
    )
    response = jsonify([run.to_dict() for run in runs])
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.get("/runs")
@describe("List the runs of every job", query=AllRunsQuery, response=list[RunOut], paged=True)
def list_all_runs() -> Response:
    query = query_args(AllRunsQuery)
    return _runs_page(query.job_id, query)


@bp.get("/jobs/<job_id>/runs")
@describe(
    "List the runs of a job",
    description="A deleted job keeps its history; an unknown job has none.",
    query=RunListQuery,
    response=list[RunOut],
    paged=True,
)
def list_job_runs(job_id: str) -> Response:
    return _runs_page(job_id, query_args(RunListQuery))  # a deleted job keeps its history


@bp.get("/runs/<int:run_id>")
@describe("Get a run", response=RunOut)
def get_one_run(run_id: int) -> Response:
    if run_id > MAX_RUN_ID:  # no such run, and too big for the database's integer type
        raise NotFound(f"Run {run_id} not found")
    return jsonify(get_run(run_id).to_dict())


@bp.get("/jobs/<job_id>/fires")
@describe(
    "List the fire ledger of a job",
    description="Every due instant of the job, newest first, and what became of it: run "
    "(`run_id`, its `state`, later `attempts`), coalesced into another run, missed, skipped "
    "(max_instances) or skipped_duplicate (claimed by another replica). `no_leader` marks an "
    "instant that fell due before the deciding replica began firing.",
    query=FireListQuery,
    response=list[FireOut],
    paged=True,
)
def list_job_fires(job_id: str) -> Response:
    query = query_args(FireListQuery)
    check_at_most("limit", query.limit, current_app.config["SCHEDULER_MAX_PAGE_SIZE"])
    fires, total = list_fires(
        job_id,
        since=_utc("since", query.since),
        until=_utc("until", query.until),
        limit=query.limit,
        offset=query.offset,
    )
    response = jsonify(fires)
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.post("/jobs/<job_id>/run")
@require_role("operator")
@describe(
    "Run a job now",
    description="Records a pending manual run for the firing leader, which submits it to "
    "the job's executor at once (also while the scheduler is paused); `?wait=N` waits up to "
    "N seconds for its outcome. 409 when the job already has `max_instances` runs open.",
    query=RunNowQuery,
    response=RunOut,
    status=202,
    errors=(409, 503),
)
def run_job(job_id: str) -> tuple[Response, int]:
    wait = query_args(RunNowQuery).wait
    run_id = get_job_service().run_job(job_id)
    run = wait_for_outcome(run_id, timeout=wait) if wait else get_run(run_id)
    return jsonify(run.to_dict()), 202
