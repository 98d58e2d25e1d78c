"""Run history routes (SPEC §6): what every run of every job did."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify, request

from ..auth import require_role
from ..errors import BadRequest
from ..runs.models import RUN_STATES
from ..runs.service import get_run, list_runs, wait_for_outcome
from ..scheduler.ext import get_job_service
from .request import choice_arg, int_arg

bp = Blueprint("runs", __name__)

MAX_WAIT = 300  # seconds a ?wait= may ask for


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            f"query parameter {name!r} must be an ISO 8601 time", errors={name: raw}
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _runs_page(job_id: str | None) -> Response:
    runs, total = list_runs(
        job_id=job_id,
        state=choice_arg("state", RUN_STATES),
        since=_time_arg("since"),
        until=_time_arg("until"),
        limit=int_arg(
            "limit", default=50, minimum=1, maximum=current_app.config["SCHEDULER_MAX_PAGE_SIZE"]
        )
        or 50,
        offset=int_arg("offset", default=0, minimum=0) or 0,
    )
    response = jsonify([run.to_dict() for run in runs])
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.get("/runs")
def list_all_runs() -> Response:
    return _runs_page(request.args.get("job_id"))


@bp.get("/jobs/<job_id>/runs")
def list_job_runs(job_id: str) -> Response:
    return _runs_page(job_id)  # a deleted job keeps its history


@bp.get("/runs/<int:run_id>")
def get_one_run(run_id: int) -> Response:
    return jsonify(get_run(run_id).to_dict())


@bp.post("/jobs/<job_id>/run")
@require_role("operator")
def run_job(job_id: str) -> tuple[Response, int]:
    wait = int_arg("wait", default=0, minimum=0, maximum=MAX_WAIT) or 0
    run_ids = get_job_service().run_job(job_id)
    if not run_ids:  # the run went to the executor but could not be recorded
        return jsonify({"job_id": job_id, "state": "submitted", "id": None}), 202
    run = wait_for_outcome(run_ids[0], timeout=wait) if wait else get_run(run_ids[0])
    return jsonify(run.to_dict()), 202
