"""Live job-store namespaces for the tests: one per test (table, keys, path, collection),
on the servers that scripts/services.sh starts (TEST_* variables), dropped afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from flask import Flask

from scheduler_service.stores import parse_jobstore_url


def server_id(name: str, kind_variable: str) -> str:
    """Name a test after the emulator when scripts/services.sh started one instead of the server."""
    return f"{name}-emulator" if os.environ.get(kind_variable, "").startswith("emulator") else name


def with_query(url: str, **params: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


@dataclass
class Live:
    """A store URL with this test's own namespace, a raw look into it, and its cleanup."""

    url: str
    holds: Callable[[str], bool]  # does the namespace hold this job id, seen by the raw driver?
    drop: Callable[[], None]


def sql_live(base: str, namespace: str) -> Live:
    import sqlalchemy as sa

    engine = sa.create_engine(parse_jobstore_url(base)[1]["url"])
    table = sa.Table(namespace, sa.MetaData(), sa.Column("id", sa.Unicode(191)))

    def holds(job_id: str) -> bool:
        with engine.connect() as connection:
            query = sa.select(table.c.id).where(table.c.id == job_id)
            return connection.execute(query).first() is not None

    def drop() -> None:
        table.drop(engine, checkfirst=True)
        engine.dispose()

    return Live(with_query(base, tablename=namespace), holds, drop)


def redis_live(base: str, namespace: str) -> Live:
    import redis

    client = redis.Redis.from_url(base)
    keys = {"jobs_key": f"{namespace}.jobs", "run_times_key": f"{namespace}.run_times"}

    def drop() -> None:
        client.delete(*keys.values())
        client.close()

    holds = lambda job_id: bool(client.hexists(keys["jobs_key"], job_id))  # noqa: E731
    return Live(with_query(base, **keys), holds, drop)


def zookeeper_live(hosts: str, namespace: str) -> Live:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts, timeout=5)
    client.start(timeout=5)

    def drop() -> None:
        client.delete(f"/{namespace}", recursive=True)
        client.stop()
        client.close()

    holds = lambda job_id: client.exists(f"/{namespace}/jobs/{job_id}") is not None  # noqa: E731
    return Live(f"zookeeper://{hosts}/{namespace}/jobs", holds, drop)


def mongodb_live(base: str, namespace: str) -> Live:
    import pymongo

    client = pymongo.MongoClient(base, serverSelectionTimeoutMS=5000)
    database = client.get_default_database(default="apscheduler")

    def drop() -> None:
        database.drop_collection(namespace)
        client.close()

    holds = lambda job_id: database[namespace].find_one({"_id": job_id}) is not None  # noqa: E731
    return Live(with_query(base, collection=namespace), holds, drop)


def rethinkdb_live(base: str, namespace: str) -> Live:
    from rethinkdb import RethinkDB

    r, parts = RethinkDB(), urlsplit(base)
    credentials = {"user": parts.username, "password": parts.password} if parts.username else {}
    conn = r.connect(host=parts.hostname, port=parts.port or 28015, timeout=5, **credentials)
    database = parts.path.strip("/") or "apscheduler"

    def drop() -> None:
        if database in r.db_list().run(conn) and namespace in r.db(database).table_list().run(conn):
            r.db(database).table_drop(namespace).run(conn)
        conn.close()

    holds = lambda job_id: r.db(database).table(namespace).get(job_id).run(conn) is not None  # noqa: E731
    return Live(with_query(base, table=namespace), holds, drop)


LIVE: dict[str, tuple[str | None, Callable[[str, str], Live]]] = {
    "sqlite": (None, sql_live),
    "postgres": ("TEST_POSTGRES_URL", sql_live),
    "mariadb": ("TEST_MYSQL_URL", sql_live),
    "redis": ("TEST_REDIS_URL", redis_live),
    "zookeeper": ("TEST_ZOOKEEPER_HOSTS", zookeeper_live),
    server_id("mongodb", "TEST_MONGODB_SERVER"): ("TEST_MONGODB_URL", mongodb_live),
    server_id("rethinkdb", "TEST_RETHINKDB_SERVER"): ("TEST_RETHINKDB_URL", rethinkdb_live),
}


def stop(app: Flask) -> None:
    """Shut the app's scheduler down, waiting for its jobs."""
    extension = app.extensions["scheduler_service"]
    if extension.running:
        extension.shutdown(wait=True)
    assert not extension.running


def release_connections(app: Flask) -> None:
    """Close what the scheduler's last, post-shutdown _process_jobs() reopened on SQL and Redis
    stores (see test_shutdown_does_not_consume_due_runs): an open psycopg connection left to
    the garbage collector is a ResourceWarning, an error under this project's filterwarnings,
    raised in whichever test happens to run then."""
    for store in app.extensions["scheduler_service"].jobstores.values():
        if hasattr(store, "engine"):
            store.engine.dispose()
        elif hasattr(store, "redis"):
            store.redis.connection_pool.disconnect()
