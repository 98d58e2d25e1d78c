"""Scheduler info and control, and the list of schedulable functions (SPEC §3)."""

from __future__ import annotations

from apscheduler.schedulers.base import STATE_STOPPED
from flask import Blueprint, Response, current_app, jsonify
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..auth import require_role
from ..control import get_scheduler
from ..control.info import cluster_info, scheduler_info
from ..control.startup import start_scheduler
from ..errors import Conflict, ServiceUnavailable, ValidationFailed, validation_errors
from ..openapi import describe
from ..scheduler.callables import list_tasks
from ..web import json_object
from .schemas import ClusterOut, SchedulerInfo, ShutdownBody, Task

bp = Blueprint("scheduler", __name__)


def _require_started() -> None:
    if get_scheduler().state == STATE_STOPPED:
        raise Conflict("the scheduler is shut down; POST /scheduler/start first")


@bp.get("")
@describe("Scheduler info", response=SchedulerInfo)
def get_scheduler_info() -> Response:
    return jsonify(scheduler_info(get_scheduler()))


@bp.get("/cluster")
@describe(
    "List the replicas",
    description="Every process sharing the service database, with its role and heartbeat "
    "(`alive` false once it missed SCHEDULER_HEARTBEAT_TIMEOUT), and whether firing is paused "
    "cluster-wide.",
    response=ClusterOut,
    errors=(503,),
)
def get_cluster() -> Response:
    return jsonify(cluster_info(get_scheduler()))


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
@describe(
    "Pause the scheduler on every replica: jobs stay, nothing fires (manual runs still do)",
    status=204,
    errors=(409, 503),
)
def pause_scheduler() -> Response:
    _require_started()
    try:
        get_scheduler().pause()
    except SQLAlchemyError:
        raise ServiceUnavailable("the service database is unavailable") from None
    return Response(status=204)


@bp.post("/resume")
@require_role("operator")
@describe("Resume the scheduler on every replica", status=204, errors=(409, 503))
def resume_scheduler() -> Response:
    _require_started()
    extension = get_scheduler()
    if not extension.may_fire and extension.election is None:
        raise Conflict(f"host {extension.host_name} is not in SCHEDULER_ALLOWED_HOSTS")
    try:
        extension.resume()
    except SQLAlchemyError:
        raise ServiceUnavailable("the service database is unavailable") from None
    return Response(status=204)


@bp.get("/tasks")
@describe("List the functions that may be scheduled", response=list[Task])
def list_tasks_view() -> Response:
    return jsonify(list_tasks(current_app.config["SCHEDULER_ALLOWED_MODULES"]))
