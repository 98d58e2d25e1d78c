"""Unauthenticated health probes: /healthz (alive) and /readyz (stores and database answer)."""

from __future__ import annotations

from typing import Literal

from apscheduler.schedulers.base import STATE_STOPPED
from flask import Blueprint, Response, current_app, jsonify
from pydantic import BaseModel
from sqlalchemy import text

from .errors import ServiceUnavailable
from .extensions import db
from .openapi import describe
from .scheduler.backends import probe_jobstore
from .scheduler.ext import get_scheduler, state_name
from .scheduler.service import store_error

bp = Blueprint("health", __name__)


class Health(BaseModel):
    """Whether the process and its scheduler thread are alive."""

    status: Literal["ok", "failing"]
    scheduler: Literal["stopped", "running", "paused"]


class Readiness(BaseModel):
    """Whether every job store, the database and the coordination service answer; one check
    per store; and this replica's role."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    role: Literal["leader", "follower"]


@bp.get("/healthz")
@describe("Liveness (no authentication)", response=Health, responses={503: Health})
def healthz() -> tuple[Response, int]:
    """Alive: the process answers and, once started, the scheduler thread runs."""
    extension = get_scheduler()
    thread = getattr(extension.scheduler, "_thread", None)
    alive = extension.state == STATE_STOPPED or (thread is not None and thread.is_alive())
    body = {"status": "ok" if alive else "failing", "scheduler": state_name(extension.state)}
    return jsonify(body), 200 if alive else 503


@bp.get("/readyz")
@describe("Readiness (no authentication)", response=Readiness, responses={503: Readiness})
def readyz() -> tuple[Response, int]:
    """Ready: every job store, the service database and the coordination service answer."""
    timeout = current_app.config["SCHEDULER_STORE_TIMEOUT"]
    extension = get_scheduler()
    checks: dict[str, str] = {}
    for alias, store in extension.jobstores.items():
        try:
            probe_jobstore(store, timeout=timeout)
            checks[f"jobstore:{alias}"] = "ok"
        except ServiceUnavailable as exc:
            checks[f"jobstore:{alias}"] = exc.message
            store_error.send(current_app._get_current_object(), kind="probe")
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver's error: report its kind, never the URL
        checks["database"] = f"unreachable ({type(exc).__name__})"
    finally:
        db.session.remove()
    if extension.election is not None:
        checks["coordination"] = extension.election.error or "ok"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks, "role": extension.role}
    return jsonify(body), 200 if ready else 503
