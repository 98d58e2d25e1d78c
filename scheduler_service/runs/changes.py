"""Later changes of a run's state (start, finish, timeout, refusal, loss), as RunChanges for
the run writer (see writer.py). A failure to record one never fails the job: it is logged,
loudly, and the run goes on."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from flask import current_app

from ..dbtypes import utcnow
from .recorder import HOST
from .writer import RunChange, run_writer, write_now

# A run's finish applies from any state but a final one: a late finish never overwrites
# timed_out, and a run the sweep closed as unknown while its process lived gets its outcome.
FINISHING_FROM = ("submitted", "running", "unknown")


def queue_change(change: RunChange) -> None:
    """Write ``change`` through the app's run writer when it has one, else at once."""
    writer = run_writer(current_app)
    if writer is not None:
        writer.put(change)
    else:
        write_now([change])


def started_change(run_id: int, *, started_at: datetime) -> RunChange:
    """The change that marks a run as running in this process."""
    return RunChange(
        run_id,
        ("submitted", "unknown"),
        {"state": "running", "started_at": started_at, "host": HOST, "pid": os.getpid()},
    )


def finished_change(
    run_id: int, *, state: str, started_at: datetime | None, **fields: Any
) -> RunChange:
    """The change that marks a run finished (succeeded, failed or missed)."""
    finished = utcnow()
    duration = None if started_at is None else (finished - started_at).total_seconds()
    source = ("submitted",) if state == "missed" else FINISHING_FROM
    values = {"state": state, "finished_at": finished, "duration": duration, **fields}
    return RunChange(run_id, source, values)


def timed_out_change(run_id: int, *, started_at: datetime | None, timeout: float) -> RunChange:
    """The change that marks a run still going past its timeout as timed_out."""
    finished = utcnow()
    duration = timeout if started_at is None else (finished - started_at).total_seconds()
    return RunChange(
        run_id,
        FINISHING_FROM,
        {
            "state": "timed_out",
            "finished_at": finished,
            "duration": duration,
            "error": f"timed out after {timeout:g} s",
        },
    )


def skipped_change(run_id: int) -> RunChange:
    """The change that marks a claimed fire not run (max_instances reached)."""
    return RunChange(run_id, ("submitted",), {"state": "skipped", "finished_at": utcnow()})


def lost_change(run_id: int, *, error: str) -> RunChange:
    """The change that marks a run whose worker died before it reported as failed."""
    return RunChange(
        run_id, FINISHING_FROM, {"state": "failed", "finished_at": utcnow(), "error": error}
    )
