"""Scheduler info and control, and the list of schedulable functions (SPEC §3)."""

from __future__ import annotations

from apscheduler.schedulers.base import STATE_STOPPED
from flask import Blueprint, Response, current_app, jsonify
from pydantic import ValidationError

from ..auth import require_role
from ..errors import Conflict, ValidationFailed, validation_errors
from ..openapi import describe
from ..scheduler.callables import list_tasks
from ..scheduler.ext import get_scheduler, scheduler_info, start_scheduler
from .request import json_object
from .schemas import SchedulerInfo, ShutdownBody, Task

bp = Blueprint("scheduler", __name__)


def _require_started() -> None:
    if get_scheduler().state == STATE_STOPPED:
        raise Conflict("the scheduler is shut down; POST /scheduler/start first")


@bp.get("")
@describe("Scheduler info", response=SchedulerInfo)
def get_scheduler_info() -> Response:
    return jsonify(scheduler_info(get_scheduler()))


@bp.post("/start")
@describe("Start the scheduler", status=204, errors=(409,))
def start_scheduler_view() -> Response:
    if get_scheduler().state != STATE_STOPPED:
        raise Conflict("the scheduler is already running")
    start_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]
    return Response(status=204)


@bp.post("/shutdown")
@describe(
    "Shut the scheduler down", body=ShutdownBody, body_required=False, status=204, errors=(409,)
)
def shutdown_scheduler() -> Response:
    try:
        options = ShutdownBody.model_validate(json_object(required=False) or {})
    except ValidationError as exc:
        raise ValidationFailed("the options are not valid", errors=validation_errors(exc)) from None
    _require_started()
    get_scheduler().shutdown(wait=options.wait)
    return Response(status=204)


@bp.post("/pause")
@require_role("operator")
@describe("Pause the scheduler: jobs stay, nothing fires", status=204, errors=(409,))
def pause_scheduler() -> Response:
    _require_started()
    get_scheduler().pause()
    return Response(status=204)


@bp.post("/resume")
@require_role("operator")
@describe("Resume the scheduler", status=204, errors=(409,))
def resume_scheduler() -> Response:
    _require_started()
    extension = get_scheduler()
    if not extension.may_fire:
        raise Conflict(f"host {extension.host_name} is not in SCHEDULER_ALLOWED_HOSTS")
    extension.resume()
    return Response(status=204)


@bp.get("/tasks")
@describe("List the functions that may be scheduled", response=list[Task])
def list_tasks_view() -> Response:
    return jsonify(list_tasks(current_app.config["SCHEDULER_ALLOWED_MODULES"]))
