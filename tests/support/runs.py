"""Stand-ins for recording runs without a scheduler."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def stand_in_job(job_id: str) -> Any:
    """What the run recorder reads of an APScheduler job, for recording runs without one."""
    return SimpleNamespace(
        id=job_id, name=job_id, func_ref="jobs.examples:print_test", executor="default"
    )
