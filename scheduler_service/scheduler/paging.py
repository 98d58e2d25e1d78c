"""One page of a job store's jobs, read at the store: only the page is unpickled.

APScheduler's ``get_all_jobs`` reads and unpickles every job; a page of 100 among 10,000
should not. Each store lists its scheduled jobs soonest first, then its paused jobs (as
``get_all_jobs`` does, paused ones ordered by id here). SQL stores use ORDER BY/LIMIT on the
indexed next_run_time, Redis stores ZRANGE on the run-times sorted set, and the memory store
slices its sorted list. Other stores have no fast path (``pager`` returns None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apscheduler.job import Job

# (active, offset, limit) -> jobs; () -> how many (scheduled, paused)
PageFn = Callable[[bool, int, int], list[Job]]
CountsFn = Callable[[], tuple[int, int]]


class StorePager:
    """Count and page one store's scheduled (active) and paused jobs, for one request: the
    counts are read once (one query) and reused."""

    def __init__(self, counts: CountsFn, page: PageFn) -> None:
        self._counts_fn = counts
        self._counts: tuple[int, int] | None = None
        self._page = page

    def count(self, active: bool) -> int:
        """How many scheduled (``active``) or paused jobs the store holds."""
        if self._counts is None:
            self._counts = self._counts_fn()
        return self._counts[0 if active else 1]

    def total(self, paused: bool | None) -> int:
        """How many jobs the store holds: all, only paused, or only scheduled."""
        if paused is None:
            return self.count(True) + self.count(False)
        return self.count(not paused)

    def page(self, paused: bool | None, offset: int, limit: int) -> list[Job]:
        """The jobs at [offset, offset + limit) of the store's order, filtered by ``paused``."""
        if limit <= 0:
            return []
        if paused is not None:
            return self._page(not paused, offset, limit)
        active = self.count(True)
        jobs = self._page(True, offset, limit) if offset < active else []
        rest = limit - len(jobs)
        if rest > 0:
            jobs += self._page(False, max(0, offset - active), rest)
        return jobs


def pager(store: Any) -> StorePager | None:
    """The fast path of ``store``, or None when it has none."""
    from apscheduler.jobstores.memory import MemoryJobStore

    if isinstance(store, MemoryJobStore):
        return _memory(store)
    if hasattr(store, "jobs_t") and hasattr(store, "engine"):
        return _sql(store)
    if hasattr(store, "run_times_key") and hasattr(store, "redis"):
        return _redis(store)
    return None


def count_jobs(store: Any) -> int:
    """How many jobs ``store`` holds: counted at the store where it can (nothing unpickled),
    else by reading them all."""
    fast = pager(store)
    return fast.total(None) if fast is not None else len(store.get_all_jobs())


def _memory(store: Any) -> StorePager:
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


def _sql(store: Any) -> StorePager:
    from sqlalchemy import func, select

    table = store.jobs_t

    def where(active: bool) -> Any:
        return table.c.next_run_time.isnot(None) if active else table.c.next_run_time.is_(None)

    def counts() -> tuple[int, int]:
        query = select(func.count(), func.count(table.c.next_run_time)).select_from(table)
        with store.engine.begin() as connection:
            every, scheduled = connection.execute(query).one()
        return scheduled, every - scheduled

    def page(active: bool, offset: int, limit: int) -> list[Job]:
        order = (table.c.next_run_time, table.c.id) if active else (table.c.id,)
        query = (
            select(table.c.job_state)
            .where(where(active))
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        )
        with store.engine.begin() as connection:
            states = connection.execute(query).scalars().all()
        return [store._reconstitute_job(state) for state in states]

    return StorePager(counts, page)


def _redis(store: Any) -> StorePager:
    redis = store.redis

    def counts() -> tuple[int, int]:
        with redis.pipeline(transaction=True) as pipe:
            scheduled, every = pipe.zcard(store.run_times_key).hlen(store.jobs_key).execute()
        return scheduled, every - scheduled

    def paused_ids() -> list[bytes]:
        scheduled = set(redis.zrange(store.run_times_key, 0, -1))
        return sorted(i for i in redis.hkeys(store.jobs_key) if i not in scheduled)

    def page(active: bool, offset: int, limit: int) -> list[Job]:
        if active:
            ids = redis.zrange(store.run_times_key, offset, offset + limit - 1)
        else:
            ids = paused_ids()[offset : offset + limit]
        if not ids:
            return []
        states = redis.hmget(store.jobs_key, ids)
        return [store._reconstitute_job(state) for state in states if state is not None]

    return StorePager(counts, page)
