"""The job routes of SPEC §3, compatible with Flask-APScheduler's on every success path."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..auth import require_role
from ..scheduler.ext import get_job_service
from ..scheduler.serialize import job_to_dict
from .request import bool_arg, choice_arg, int_arg, json_body, json_object

bp = Blueprint("jobs", __name__)


@bp.get("/jobs")
def list_jobs() -> Response:
    jobs = get_job_service().list_jobs(
        jobstore=choice_arg("jobstore", get_job_service().context.jobstores),
        trigger=choice_arg("trigger", ("date", "interval", "cron")),
        paused=bool_arg("paused"),
    )
    offset = int_arg("offset", default=0, minimum=0)
    limit = int_arg(
        "limit", default=None, minimum=1, maximum=current_app.config["SCHEDULER_MAX_PAGE_SIZE"]
    )
    page = jobs[offset:] if limit is None else jobs[offset : offset + limit]
    response = jsonify([job_to_dict(job) for job in page])
    response.headers["X-Total-Count"] = str(len(jobs))
    return response


@bp.post("/jobs")
def add_job() -> Response:
    job = get_job_service().add_job(json_body())
    return jsonify(job_to_dict(job))


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return jsonify(job_to_dict(get_job_service().get_job(job_id)))


@bp.patch("/jobs/<job_id>")
def update_job(job_id: str) -> Response:
    job = get_job_service().modify_job(job_id, json_object())
    return jsonify(job_to_dict(job))


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    get_job_service().remove_job(job_id)
    return Response(status=204)


@bp.post("/jobs/<job_id>/pause")
@require_role("operator")
def pause_job(job_id: str) -> Response:
    return jsonify(job_to_dict(get_job_service().pause_job(job_id)))


@bp.post("/jobs/<job_id>/resume")
@require_role("operator")
def resume_job(job_id: str) -> Response:
    return jsonify(job_to_dict(get_job_service().resume_job(job_id)))
