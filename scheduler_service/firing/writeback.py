"""Write a processing pass's job changes to a store at once, not one job at a time.

After a wake-up has submitted its due jobs, each job's next run time moves on (an update)
or the job is done (a removal). APScheduler writes each with its own ``update_job`` or
``remove_job``: with 1,000 jobs due at once, 1,000 transactions or round trips. Here a SQL
store gets one transaction (an executemany UPDATE and a DELETE ... IN), a Redis store two
pipelines, and the memory store its own methods; other stores fall back to one call a job.

Rows are written exactly as the store's own ``update_job`` writes them (pickled state,
UTC timestamp), so the store round-trips and vanilla readers sharing it see no difference.
A job removed by someone else meanwhile is not brought back: updates touch only the jobs
still there, as ``update_job`` would (it raises JobLookupError for them).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from collections.abc import Sequence
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.util import datetime_to_utc_timestamp

log = logging.getLogger(__name__)

CHUNK = 500  # ids in one DELETE ... IN (...)


def write_back(store: Any, updated: Sequence[Job], removed: Sequence[str]) -> None:
    """Store the new state of ``updated`` jobs and delete the ``removed`` ids, in as few
    round trips as the store allows."""
    if not updated and not removed:
        return
    if isinstance(store, MemoryJobStore):
        _one_by_one(store, updated, removed)
    elif hasattr(store, "jobs_t") and hasattr(store, "engine"):
        _sql(store, updated, removed)
    elif hasattr(store, "run_times_key") and hasattr(store, "redis"):
        _redis(store, updated, removed)
    else:
        _one_by_one(store, updated, removed)


def _state(store: Any, job: Job) -> bytes:
    return pickle.dumps(job.__getstate__(), store.pickle_protocol)


def _one_by_one(store: Any, updated: Sequence[Job], removed: Sequence[str]) -> None:
    for job in updated:
        try:
            store.update_job(job)
        except JobLookupError:
            log.debug("job %s was removed while it ran: not stored again", job.id)
    for job_id in removed:
        with contextlib.suppress(JobLookupError):
            store.remove_job(job_id)


def _sql(store: Any, updated: Sequence[Job], removed: Sequence[str]) -> None:
    from sqlalchemy import bindparam

    table = store.jobs_t
    with store.engine.begin() as connection:
        if updated:
            statement = (
                table.update()
                .where(table.c.id == bindparam("job_id"))
                .values(next_run_time=bindparam("run_at"), job_state=bindparam("state"))
            )
            connection.execute(
                statement,
                [
                    {
                        "job_id": job.id,
                        "run_at": datetime_to_utc_timestamp(job.next_run_time),
                        "state": _state(store, job),
                    }
                    for job in updated
                ],
            )
        for start in range(0, len(removed), CHUNK):
            connection.execute(table.delete().where(table.c.id.in_(removed[start : start + CHUNK])))


def _redis(store: Any, updated: Sequence[Job], removed: Sequence[str]) -> None:
    redis, jobs_key, run_times_key = store.redis, store.jobs_key, store.run_times_key
    present: list[Any] = []
    if updated:
        with redis.pipeline(transaction=False) as pipe:
            for job in updated:
                pipe.hexists(jobs_key, job.id)
            present = pipe.execute()
    with redis.pipeline() as pipe:
        for job, there in zip(updated, present, strict=True):
            if not there:
                continue
            pipe.hset(jobs_key, job.id, _state(store, job))
            if job.next_run_time:
                pipe.zadd(run_times_key, {job.id: datetime_to_utc_timestamp(job.next_run_time)})
            else:
                pipe.zrem(run_times_key, job.id)
        if removed:
            pipe.hdel(jobs_key, *removed)
            pipe.zrem(run_times_key, *removed)
        pipe.execute()
