"""Writing run records. Call inside an app context.

Inserts (claims, submissions) are written at once, in one short transaction per call: their
ids are needed. Updates of a run's state go through the app's run writer when it has one
(see writer.py), else inline. A failure to record never fails the job: it is logged, loudly,
and the run goes on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from ..dbtypes import utcnow
from ..extensions import db
from .models import Run
from .writer import RunChange, run_writer, write_changes

__all__ = ["utcnow"]  # re-exported for the runners

log = logging.getLogger(__name__)

HOST = socket.gethostname()
RESULT_LIMIT = 10_000  # characters of a JSON-encoded return value


def encode_result(value: Any, *, limit: int = RESULT_LIMIT) -> tuple[str, bool]:
    """Encode a return value as JSON (repr() for what JSON cannot hold), cut at ``limit``."""
    if value is None:  # most jobs return nothing
        return "null", False
    text = json.dumps(value, default=repr)
    if len(text) > limit:
        return text[:limit], True
    return text, False


def _row(
    job: Any, run_time: datetime, *, trigger: str, state: str, attempt: int, now: datetime
) -> dict[str, Any]:
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
        "finished_at": now if state.startswith("skipped") else None,
    }


def _new_run(
    job: Any, run_time: datetime, *, trigger: str, state: str, attempt: int, now: datetime
) -> Run:
    return Run(**_row(job, run_time, trigger=trigger, state=state, attempt=attempt, now=now))


def _insert(runs: list[Run]) -> list[int]:
    """Insert ``runs`` in one transaction; return their ids (read before the commit, which
    would expire them)."""
    db.session.add_all(runs)
    db.session.flush()
    ids = [run.id for run in runs]
    db.session.commit()
    return ids


def record_submitted(
    *,
    job: Any,
    run_times: Sequence[datetime],
    trigger: str,
    state: str = "submitted",
    attempt: int = 1,
) -> list[int]:
    """Insert one run per run time; return their ids."""
    now = utcnow()
    runs = [
        _new_run(job, t, trigger=trigger, state=state, attempt=attempt, now=now) for t in run_times
    ]
    try:
        return _insert(runs)
    except Exception:
        db.session.rollback()
        log.exception("could not record the submission of job %s", job.id)
        return []


def claim_fires(*, job: Any, run_times: Sequence[datetime]) -> list[tuple[datetime, int | None]]:
    """Claim each scheduled fire of ``job`` for this process and record its first attempt;
    return the (run time, run id) of the fires claimed here (``claim_many`` for one job)."""
    return claim_many([(job, run_times)])[0]


def claim_many(
    fires: Sequence[tuple[Any, Sequence[datetime]]],
) -> list[list[tuple[datetime, int | None]]]:
    """Claim the fires of many jobs at once: one multi-row INSERT for a whole wake-up.

    ``fires`` holds (job, run times) pairs; the result holds, for each pair in order, the
    (run time, run id) of the fires claimed here. A fire another process claimed already
    (two replicas firing in a split brain) is recorded ``skipped_duplicate`` and left out:
    then every fire is claimed on its own, to sort out who won. When the database cannot
    be written, every fire is returned unclaimed, with no run id: it runs rather than
    being lost.
    """
    now = utcnow()
    rows = [
        {**_row(job, t, trigger="schedule", state="submitted", attempt=1, now=now), "claim": True}
        for job, run_times in fires
        for t in run_times
    ]
    if not rows:
        return [[] for _ in fires]
    try:
        table = Run.__table__  # a Core INSERT: the ORM's bulk path costs twice the CPU
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = list(db.session.scalars(returning, rows))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return [_claim_each(job, run_times, now) for job, run_times in fires]
    except Exception:
        db.session.rollback()
        log.exception("could not claim the fires of %d jobs: running them unclaimed", len(fires))
        return [[(t, None) for t in run_times] for _, run_times in fires]
    claimed: list[list[tuple[datetime, int | None]]] = []
    position = 0
    for _, run_times in fires:
        claimed.append(list(zip(run_times, ids[position : position + len(run_times)], strict=True)))
        position += len(run_times)
    return claimed


def _claim_each(
    job: Any, run_times: Sequence[datetime], now: datetime
) -> list[tuple[datetime, int | None]]:
    """Claim one fire at a time; record the ones claimed elsewhere as skipped_duplicate."""
    won: list[tuple[datetime, int | None]] = []
    for run_time in run_times:
        run = _new_run(job, run_time, trigger="schedule", state="submitted", attempt=1, now=now)
        run.claim = True
        try:
            won.append((run_time, _insert([run])[0]))
        except IntegrityError:
            db.session.rollback()
            _record_duplicate(job, run_time, now)
        except Exception:
            db.session.rollback()
            log.exception("could not claim the fire of job %s: running it unclaimed", job.id)
            won.append((run_time, None))
    return won


def _record_duplicate(job: Any, run_time: datetime, now: datetime) -> None:
    holder = db.session.execute(
        db.select(Run.id, Run.host, Run.pid).where(
            Run.job_id == job.id, Run.scheduled_run_time == run_time, Run.claim.is_(True)
        )
    ).first()
    run = _new_run(job, run_time, trigger="schedule", state="skipped_duplicate", attempt=1, now=now)
    if holder is not None:
        run.error = f"claimed by run {holder.id} (host {holder.host}, pid {holder.pid})"
    log.warning("job %s: the fire of %s was claimed elsewhere; not run here", job.id, run_time)
    try:
        _insert([run])
    except Exception:
        db.session.rollback()
        log.exception("could not record the duplicate fire of job %s", job.id)


def _update(run_id: int | None, *, from_states: tuple[str, ...], **values: Any) -> None:
    """Update a run that is in one of ``from_states`` (a late finish never overwrites
    timed_out): through the app's run writer when it has one, else at once."""
    if run_id is None:
        return
    change = RunChange(run_id, from_states, values)
    writer = run_writer(current_app)
    if writer is not None:
        writer.put(change)
    else:
        write_changes([change])


def record_started(run_id: int | None, *, started_at: datetime) -> None:
    """Mark a run as running in this process."""
    _update(
        run_id,
        from_states=("submitted",),
        state="running",
        started_at=started_at,
        host=HOST,
        pid=os.getpid(),
    )


def record_finished(
    run_id: int | None, *, state: str, started_at: datetime | None, **fields: Any
) -> None:
    """Mark a run finished (succeeded, failed or missed) with what it left behind."""
    finished = utcnow()
    duration = None if started_at is None else (finished - started_at).total_seconds()
    source = ("submitted",) if state == "missed" else ("running",)
    _update(
        run_id, from_states=source, state=state, finished_at=finished, duration=duration, **fields
    )


def record_timed_out(run_id: int | None, *, started_at: datetime | None, timeout: float) -> None:
    """Mark a run that is still going past its timeout as timed_out."""
    finished = utcnow()
    duration = timeout if started_at is None else (finished - started_at).total_seconds()
    _update(
        run_id,
        from_states=("submitted", "running"),
        state="timed_out",
        finished_at=finished,
        duration=duration,
        error=f"timed out after {timeout:g} s",
    )


def record_skipped(run_id: int | None) -> None:
    """Mark a claimed fire that was not run (its job already runs max_instances times)."""
    _update(run_id, from_states=("submitted",), state="skipped", finished_at=utcnow())


def record_lost(run_id: int | None, *, error: str) -> None:
    """Mark a run whose worker died before it reported as failed."""
    _update(
        run_id,
        from_states=("submitted", "running"),
        state="failed",
        finished_at=utcnow(),
        error=error,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def mark_abandoned() -> int:
    """Mark runs left submitted or running by a dead process of this host as abandoned."""
    stale = db.session.scalars(
        db.select(Run).where(Run.state.in_(("submitted", "running")), Run.host == HOST)
    ).all()
    dead = [run for run in stale if run.pid is None or not _alive(run.pid)]
    now = utcnow()
    for run in dead:
        run.state = "abandoned"
        run.finished_at = now
        run.error = "the process running it ended before the run finished"
    db.session.commit()
    return len(dead)
