"""Inserting run records: claims of due instants (with the instants coalesced into them),
duplicates, and submitted runs. Call inside an app context.

Inserts are written at once, in one short transaction per call: their ids are needed. A
claim that cannot be written raises ``HistoryUnavailable``: a fire is never run without its
record. Pending runs are in requests.py; later changes of a run's state in changes.py.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from ..dbtypes import utcnow
from ..extensions import db
from .models import Run

__all__ = ["utcnow"]  # re-exported for the runners

log = logging.getLogger(__name__)

HOST = socket.gethostname()
RESULT_LIMIT = 10_000  # characters of a JSON-encoded return value
ORIGIN_KEY = "scheduler_service.run_origin"


class HistoryUnavailable(Exception):
    """The service database did not take a claim: the fires it was for must wait."""


class Origin(NamedTuple):
    """Who records: the process start (boot) that will hold the runs, and its replica id."""

    boot: str | None
    replica: str | None


class Fire(NamedTuple):
    """One due job of a processing pass, as the ledger records it: the instant it runs for,
    the earlier instants folded into that run, and whether they fell due before this replica
    began firing."""

    job: Any
    run_times: Sequence[datetime]
    coalesced: Sequence[datetime] = ()
    firing_since: datetime | None = None


def current_origin() -> Origin:
    """Who records in this app context (none in a job-only app)."""
    return current_app.extensions.get(ORIGIN_KEY) or Origin(None, None)


def encode_result(value: Any, *, limit: int = RESULT_LIMIT) -> tuple[str, bool]:
    """Encode a return value as JSON (repr() for what JSON cannot hold), cut at ``limit``."""
    if value is None:  # most jobs return nothing
        return "null", False
    text = json.dumps(value, default=repr)
    if len(text) > limit:
        return text[:limit], True
    return text, False


def run_row(
    job: Any,
    run_time: datetime,
    *,
    trigger: str,
    state: str,
    attempt: int,
    now: datetime,
    origin: Origin,
    firing_since: datetime | None = None,
) -> dict[str, Any]:
    final = state.startswith("skipped") or state == "coalesced"
    return {
        "job_id": job.id,
        "job_name": job.name,
        "func": job.func_ref,
        "trigger": trigger,
        "state": state,
        "executor": job.executor,
        "attempt": attempt,
        "scheduled_run_time": run_time,
        "submitted_at": now,
        "host": HOST,
        "pid": os.getpid(),
        "result_truncated": False,
        "log_truncated": False,
        "finished_at": now if final else None,
        "boot": origin.boot,
        "replica": origin.replica,
        "no_leader": firing_since is not None and run_time < firing_since,
    }


def insert_rows(rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (a Core INSERT: the ORM's bulk path costs twice the CPU); return their
    ids in order. The caller commits."""
    table = Run.__table__
    returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(db.session.scalars(returning, rows))


def record_submitted(
    *,
    job: Any,
    run_times: Sequence[datetime],
    trigger: str,
    state: str = "submitted",
    attempt: int = 1,
) -> list[int]:
    """Insert one run per run time, held by this process; return their ids ([] when the
    database refused, which is logged)."""
    now, origin = utcnow(), current_origin()
    rows = [
        run_row(job, t, trigger=trigger, state=state, attempt=attempt, now=now, origin=origin)
        for t in run_times
    ]
    try:
        ids = insert_rows(rows)
        db.session.commit()
        return ids
    except Exception:
        db.session.rollback()
        log.exception("could not record the submission of job %s", job.id)
        return []


def claim_many(fires: Sequence[Fire]) -> list[list[tuple[datetime, int | None]]]:
    """Claim the fires of many jobs at once: one multi-row INSERT for a whole wake-up, and
    one more for the instants folded into them (state coalesced, pointing at their run).

    The result holds, for each fire in order, the (run time, run id) of the fires claimed
    here. A fire another process claimed already (two replicas firing in a split brain) is
    recorded ``skipped_duplicate`` and left out: then every fire is claimed on its own, to
    sort out who won.

    :raises HistoryUnavailable: the database could not be written; nothing was claimed.
    """
    now, origin = utcnow(), current_origin()
    rows = [_claim_row(f, t, "submitted", now, origin) for f in fires for t in f.run_times]
    if not rows:
        return [[] for _ in fires]
    try:
        ids = insert_rows(rows)
        claimed = _split(fires, ids)
        _insert_coalesced(fires, claimed, now, origin)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return [_claim_each(fire, now, origin) for fire in fires]
    except Exception as exc:
        db.session.rollback()
        raise HistoryUnavailable(f"could not claim the fires of {len(fires)} jobs: {exc}") from exc
    return claimed


def _split(fires: Sequence[Fire], ids: list[int]) -> list[list[tuple[datetime, int | None]]]:
    claimed: list[list[tuple[datetime, int | None]]] = []
    position = 0
    for fire in fires:
        count = len(fire.run_times)
        claimed.append(list(zip(fire.run_times, ids[position : position + count], strict=True)))
        position += count
    return claimed


def _claim_row(
    fire: Fire, run_time: datetime, state: str, now: datetime, origin: Origin
) -> dict[str, Any]:
    """The row that claims one due instant of ``fire`` (the unique index's ``claim``)."""
    row = run_row(
        fire.job,
        run_time,
        trigger="schedule",
        state=state,
        attempt=1,
        now=now,
        origin=origin,
        firing_since=fire.firing_since,
    )
    return {**row, "claim": True}


def _coalesced_rows(
    fire: Fire, into: int | None, now: datetime, origin: Origin
) -> list[dict[str, Any]]:
    return [
        {**_claim_row(fire, t, "coalesced", now, origin), "coalesced_into": into, "pid": None}
        for t in fire.coalesced
    ]


def _insert_coalesced(
    fires: Sequence[Fire],
    claimed: list[list[tuple[datetime, int | None]]],
    now: datetime,
    origin: Origin,
) -> None:
    rows = [
        row
        for fire, won in zip(fires, claimed, strict=True)
        if fire.coalesced and won
        for row in _coalesced_rows(fire, won[-1][1], now, origin)
    ]
    if rows:
        insert_rows(rows)


def _claim_each(fire: Fire, now: datetime, origin: Origin) -> list[tuple[datetime, int | None]]:
    """Claim one instant at a time; record the ones claimed elsewhere as skipped_duplicate.

    :raises HistoryUnavailable: the database could not be written.
    """
    won: list[tuple[datetime, int | None]] = []
    for run_time in fire.run_times:
        row = _claim_row(fire, run_time, "submitted", now, origin)
        try:
            won.append((run_time, insert_rows([row])[0]))
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            _record_duplicate(fire.job, run_time, now, origin)
        except Exception as exc:
            db.session.rollback()
            raise HistoryUnavailable(f"could not claim a fire of job {fire.job.id}") from exc
    if won:
        for row in _coalesced_rows(fire, won[-1][1], now, origin):
            try:
                insert_rows([row])
                db.session.commit()
            except IntegrityError:  # another replica recorded this instant
                db.session.rollback()
    return won


def _record_duplicate(job: Any, run_time: datetime, now: datetime, origin: Origin) -> None:
    holder = db.session.execute(
        db.select(Run.id, Run.host, Run.pid, Run.replica).where(
            Run.job_id == job.id, Run.scheduled_run_time == run_time, Run.claim.is_(True)
        )
    ).first()
    row = run_row(
        job,
        run_time,
        trigger="schedule",
        state="skipped_duplicate",
        attempt=1,
        now=now,
        origin=origin,
    )
    if holder is not None:
        row["error"] = f"claimed by run {holder.id} (replica {holder.replica or holder.host})"
    log.warning("job %s: the fire of %s was claimed elsewhere; not run here", job.id, run_time)
    try:
        insert_rows([row])
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not record the duplicate fire of job %s", job.id)
