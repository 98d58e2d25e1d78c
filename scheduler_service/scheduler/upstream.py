"""The APScheduler internals the service reads, each wrapped once (read from APScheduler 3.11).

APScheduler 3 has no public way to ask a job which store holds it, or a scheduler for its job
defaults; these read its private attributes. Should an upgrade move them, this module is the
one place to change.
"""

from __future__ import annotations

from typing import Any

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler


def store_alias(job: Job) -> str:
    """Return the alias of the job store that holds ``job`` (``Job._jobstore_alias``)."""
    return job._jobstore_alias


def job_defaults(scheduler: BaseScheduler) -> dict[str, Any]:
    """Return the scheduler's job defaults as configured (``BaseScheduler._job_defaults``)."""
    return dict(scheduler._job_defaults)
