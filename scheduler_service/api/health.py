"""Unauthenticated health probes: /healthz (alive) and /readyz (stores and database answer)."""

from __future__ import annotations

import logging
import time
from typing import Literal

from apscheduler.schedulers.base import STATE_STOPPED
from flask import Blueprint, Response, current_app, jsonify
from pydantic import BaseModel
from sqlalchemy import text

from ..control import get_scheduler
from ..control.info import state_name
from ..errors import ServiceUnavailable
from ..extensions import db
from ..openapi import describe
from ..scheduler.service import store_error
from ..stores import probe_jobstore

log = logging.getLogger(__name__)
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


# Seconds without a completed processing pass after which a started scheduler is stuck (a
# pass runs at least every 5 s; a burst of 1,000 fires takes well under one).
STUCK_AFTER = 60.0


@bp.get("/healthz")
@describe("Liveness (no authentication)", response=Health, responses={503: Health})
def healthz() -> tuple[Response, int]:
    """Alive: the process answers and, once started, the scheduler thread runs and its
    processing loop completed a pass within STUCK_AFTER seconds."""
    extension = get_scheduler()
    scheduler = extension.scheduler
    thread = getattr(scheduler, "_thread", None)
    alive = extension.state == STATE_STOPPED or (
        thread is not None
        and thread.is_alive()
        and time.monotonic() - getattr(scheduler, "last_pass", time.monotonic()) < STUCK_AFTER
    )
    body = {"status": "ok" if alive else "failing", "scheduler": state_name(extension.state)}
    return jsonify(body), 200 if alive else 503


@bp.get("/readyz")
@describe("Readiness (no authentication)", response=Readiness, responses={503: Readiness})
def readyz() -> tuple[Response, int]:
    """Ready: every job store, the service database and the coordination service answer,
    and the scheduler was not shut down through the API."""
    timeout = current_app.config["SCHEDULER_STORE_TIMEOUT"]
    extension = get_scheduler()
    checks: dict[str, str] = {}
    for alias, store in extension.jobstores.items():
        try:
            probe_jobstore(store, timeout=timeout)
            checks[f"jobstore:{alias}"] = "ok"
        except ServiceUnavailable as exc:  # an unauthenticated probe names no host or driver
            log.warning("readiness: %s", exc.message)
            checks[f"jobstore:{alias}"] = "unreachable"
            store_error.send(current_app._get_current_object(), kind="probe")  # type: ignore[attr-defined]
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver's error: logged; the probe says only "unreachable"
        log.warning("readiness: the service database: %s", type(exc).__name__)
        checks["database"] = "unreachable"
    finally:
        db.session.remove()
    if extension.election is not None:  # its error is logged by the election
        checks["coordination"] = "unreachable" if extension.election.error else "ok"
    if extension.state == STATE_STOPPED and current_app.config["SCHEDULER_AUTOSTART"]:
        # Shut down through the API: this replica fires nothing until POST /scheduler/start.
        # Not ready, but alive: a restart by the orchestrator would undo the operator's call.
        checks["scheduler"] = "stopped"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks, "role": extension.role}
    return jsonify(body), 200 if ready else 503
