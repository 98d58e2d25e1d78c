"""The job routes of SPEC §3, compatible with Flask-APScheduler's on every success path."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..auth import require_role
from ..control import get_job_service
from ..openapi import describe
from ..scheduler.serialize import job_to_dict
from ..scheduler.specs import JobSpec
from ..web import check_at_most, check_choice, json_body, json_object, query_args
from .schemas import JobListQuery, JobOut, JobPatch

bp = Blueprint("jobs", __name__)

# Every job route reads the job stores: 409 once the scheduler is shut down, 503 when a store
# cannot be reached.
_STORE = (409, 503)


# What a client can do next with the job it just added (OpenAPI links of POST /jobs).
_JOB_LINKS = {
    name: (operation_id, {"job_id": "$response.body#/id"})
    for name, operation_id in (
        ("GetJob", "jobs.get_job"),
        ("ChangeJob", "jobs.update_job"),
        ("RemoveJob", "jobs.delete_job"),
        ("PauseJob", "jobs.pause_job"),
        ("ResumeJob", "jobs.resume_job"),
        ("RunJob", "runs.run_job"),
        ("ListRuns", "runs.list_job_runs"),
        ("ListFires", "runs.list_job_fires"),
    )
}


@bp.get("/jobs")
@describe("List jobs", query=JobListQuery, response=list[JobOut], paged=True, errors=_STORE)
def list_jobs() -> Response:
    query = query_args(JobListQuery)
    check_choice("jobstore", query.jobstore, get_job_service().context.jobstores)
    check_at_most("limit", query.limit, current_app.config["SCHEDULER_MAX_PAGE_SIZE"])
    jobs, total = get_job_service().list_page(
        jobstore=query.jobstore,
        trigger=query.trigger,
        paused=query.paused,
        offset=query.offset,
        limit=query.limit,
    )
    response = jsonify([job_to_dict(job) for job in jobs])
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.post("/jobs")
@describe("Add a job", body=JobSpec, response=JobOut, errors=(*_STORE, 422), links=_JOB_LINKS)
def add_job() -> Response:
    job = get_job_service().add_job(json_body())
    return jsonify(job_to_dict(job))


@bp.get("/jobs/<job_id>")
@describe("Get a job", response=JobOut, errors=_STORE)
def get_job(job_id: str) -> Response:
    return jsonify(job_to_dict(get_job_service().get_job(job_id)))


@bp.patch("/jobs/<job_id>")
@describe(
    "Change a job",
    description="Validated whole against the merged job: applies fully or not at all.",
    body=JobPatch,
    response=JobOut,
    errors=(400, *_STORE, 422),
)
def update_job(job_id: str) -> Response:
    job = get_job_service().modify_job(job_id, json_object())
    return jsonify(job_to_dict(job))


@bp.delete("/jobs/<job_id>")
@describe("Remove a job", status=204, errors=_STORE)
def delete_job(job_id: str) -> Response:
    get_job_service().remove_job(job_id)
    return Response(status=204)


@bp.post("/jobs/<job_id>/pause")
@require_role("operator")
@describe("Pause a job", response=JobOut, errors=_STORE)
def pause_job(job_id: str) -> Response:
    return jsonify(job_to_dict(get_job_service().pause_job(job_id)))


@bp.post("/jobs/<job_id>/resume")
@require_role("operator")
@describe("Resume a job", response=JobOut, errors=_STORE)
def resume_job(job_id: str) -> Response:
    return jsonify(job_to_dict(get_job_service().resume_job(job_id)))
