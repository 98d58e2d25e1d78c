"""The in-process job store (``memory://``): nothing to connect to; pages from its sorted list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Backend, Options, StorePager

if TYPE_CHECKING:
    from apscheduler.job import Job


def parse(url: str) -> Options:
    """Return the options of ``memory://`` (none).

    :raises ValueError: the URL has a host, a path or options.
    """
    if url.lower() != "memory://":
        raise ValueError("memory:// takes no host, path or options")
    return {}


def pager(store: Any) -> StorePager:
    """Page the store's sorted list (its private ``_jobs``, as of APScheduler 3.11)."""

    def split() -> tuple[list[Job], list[Job]]:
        jobs = [job for job, _ in store._jobs]  # sorted; paused (no run time) at the end
        active = [job for job in jobs if job.next_run_time is not None]
        paused = sorted((job for job in jobs if job.next_run_time is None), key=lambda j: j.id)
        return active, paused

    def counts() -> tuple[int, int]:
        active, paused = split()
        return len(active), len(paused)

    def page(active: bool, offset: int, limit: int) -> list[Job]:
        return split()[0 if active else 1][offset : offset + limit]

    return StorePager(counts, page)


BACKEND = Backend(
    name="memory",
    target="apscheduler.jobstores.memory:MemoryJobStore",
    extra=None,
    schemes=("memory",),
    parse=parse,
    pager=pager,
)
