"""Redis job stores: ``redis[s]://[[user]:password@]host:6379/0?jobs_key=&run_times_key=``.

Paging uses ZRANGE on the run-times sorted set; a pass is written back in two pipelines.
Nothing here imports redis-py at module load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from .base import (
    TIMEOUT,
    Backend,
    Options,
    StorePager,
    job_state,
    port_of,
    query_options,
    split_url,
)

if TYPE_CHECKING:
    from apscheduler.job import Job


def parse(url: str) -> Options:
    """Return the store options of a ``redis://`` or ``rediss://`` (TLS) URL.

    :raises ValueError: malformed, a path that is no database number, an unknown option.
    """
    parts = split_url(url)
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"the path must be a database number, got {db!r}")
    options: dict[str, Any] = {"host": parts.hostname or "localhost", "port": port_of(parts, 6379)}
    options["db"] = int(db)
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.password is not None:
        options["password"] = unquote(parts.password)
    if parts.scheme.lower() == "rediss":
        options["ssl"] = True
    options.update(query_options(parts, known=("jobs_key", "run_times_key")))
    return options


def prepare(options: Options) -> Options:
    """Bound the connect and every call; retry once, at once."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One immediate retry survives a stale pooled connection; redis-py's default backoff would
    # keep a refused connection (and so probe_jobstore) waiting for seconds.
    defaults = {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT}
    return {**defaults, "retry": Retry(NoBackoff(), 1), **options}


def probe(store: Any, timeout: float) -> None:
    store.redis.ping()


def describe(store: Any) -> dict[str, Any]:
    pool = store.redis.connection_pool
    kwargs = pool.connection_kwargs
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    user = f"{quote(kwargs['username'])}@" if kwargs.get("username") else ""
    url = f"{scheme}://{user}{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"
    return {"url": url, "jobs_key": store.jobs_key, "run_times_key": store.run_times_key}


def pager(store: Any) -> StorePager:
    """Count in one pipeline and page with ZRANGE: only the page is unpickled."""
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


def write_back(store: Any, updated: Sequence[Job], removed: Sequence[str]) -> None:
    """Two pipelines: which updated jobs are still there, then every write in one transaction."""
    from apscheduler.util import datetime_to_utc_timestamp

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
            pipe.hset(jobs_key, job.id, job_state(store, job))
            if job.next_run_time:
                pipe.zadd(run_times_key, {job.id: datetime_to_utc_timestamp(job.next_run_time)})
            else:
                pipe.zrem(run_times_key, job.id)
        if removed:
            pipe.hdel(jobs_key, *removed)
            pipe.zrem(run_times_key, *removed)
        pipe.execute()


BACKEND = Backend(
    name="redis",
    target="apscheduler.jobstores.redis:RedisJobStore",
    extra="redis",
    schemes=("redis", "rediss"),
    parse=parse,
    prepare=prepare,
    probe=probe,
    describe=describe,
    pager=pager,
    write_back=write_back,
    connection_errors=(
        ("redis.exceptions", "ConnectionError"),
        ("redis.exceptions", "TimeoutError"),
    ),
)
