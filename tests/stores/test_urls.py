"""Job-store URLs, one backend after another: what each URL form builds (no network).

The store classes come from ``store_class``: a test whose driver is not installed is skipped.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from scheduler_service.stores import may_hold

SECRET = "s3cr3t-Pa55"  # put in URLs and options; must never reach a message or a description


def store_class(module: str, name: str) -> type:
    """Return APScheduler's store class ``name``; skip the test when its driver is missing."""
    return getattr(
        pytest.importorskip(f"apscheduler.jobstores.{module}", exc_type=ImportError), name
    )


def test_memory_url(built: Callable[..., Any]) -> None:
    assert isinstance(built("memory://"), MemoryJobStore)


def test_sqlite_relative_url_makes_the_folder_on_first_connect(
    built: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = built("sqlite:///data/jobs.db")
    assert isinstance(store, SQLAlchemyJobStore)
    assert store.engine.url.database == "data/jobs.db"
    assert store.jobs_t.name == "apscheduler_jobs"
    assert not (tmp_path / "data").exists()  # building changes nothing (check-config builds)
    with store.engine.connect():
        pass
    assert (tmp_path / "data" / "jobs.db").is_file()


def test_sqlite_absolute_url_with_table(built: Callable[..., Any], tmp_path: Path) -> None:
    store = built(f"sqlite:///{tmp_path}/a/b/jobs.db?tablename=my_jobs")
    assert store.engine.url.database == f"{tmp_path}/a/b/jobs.db"
    assert store.jobs_t.name == "my_jobs"
    assert not store.engine.url.query  # tablename is ours, not SQLAlchemy's
    with store.engine.connect():
        pass
    assert (tmp_path / "a" / "b" / "jobs.db").is_file()


@pytest.mark.parametrize(
    ("url", "drivername"),
    [
        ("postgresql://app:{pw}@db:5432/jobs", "postgresql+psycopg"),
        ("postgres://app:{pw}@db:5432/jobs", "postgresql+psycopg"),
        ("postgresql+psycopg://app:{pw}@db:5432/jobs", "postgresql+psycopg"),
        ("mysql://app:{pw}@db:3306/jobs", "mysql+pymysql"),
        ("mariadb://app:{pw}@db:3306/jobs", "mysql+pymysql"),
        ("mysql+pymysql://app:{pw}@db:3306/jobs", "mysql+pymysql"),
        ("mariadb+pymysql://app:{pw}@db:3306/jobs", "mariadb+pymysql"),
    ],
)
def test_sql_urls_get_the_shipped_driver(
    built: Callable[..., Any], url: str, drivername: str
) -> None:
    store = built(url.format(pw=SECRET))
    assert isinstance(store, SQLAlchemyJobStore)
    assert store.engine.url.drivername == drivername
    assert (store.engine.url.host, store.engine.url.database) == ("db", "jobs")
    assert store.engine.url.password == SECRET
    assert store.jobs_t.name == "apscheduler_jobs"


def test_sql_url_tablename_and_passthrough_query(built: Callable[..., Any]) -> None:
    store = built("postgresql://app@db/jobs?tablename=xyz&sslmode=require")
    assert store.jobs_t.name == "xyz"
    assert dict(store.engine.url.query) == {"sslmode": "require"}


def test_redis_url(built: Callable[..., Any]) -> None:
    store = built(f"redis://:{SECRET}@cache:6380/2?jobs_key=j.jobs&run_times_key=j.times")
    assert isinstance(store, store_class("redis", "RedisJobStore"))
    kwargs = store.redis.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache", 6380, 2)
    assert kwargs["password"] == SECRET
    assert kwargs["socket_connect_timeout"] == 5.0
    assert (store.jobs_key, store.run_times_key) == ("j.jobs", "j.times")


def test_rediss_url_uses_tls_and_defaults(built: Callable[..., Any]) -> None:
    store = built("rediss://ops@cache")
    pool = store.redis.connection_pool
    assert "SSL" in pool.connection_class.__name__
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["username"]) == (
        "cache",
        6379,
        0,
        "ops",
    )
    assert (store.jobs_key, store.run_times_key) == ("apscheduler.jobs", "apscheduler.run_times")


def test_mongodb_url(built: Callable[..., Any]) -> None:
    url = f"mongodb://app:{SECRET}@m1:27017,m2:27018/sched?collection=c1&replicaSet=rs0"
    store = built(url)
    assert isinstance(store, store_class("mongodb", "MongoDBJobStore"))
    assert (store.collection.database.name, store.collection.name) == ("sched", "c1")
    options = store.client.options
    assert options.replica_set_name == "rs0"
    assert options.server_selection_timeout == 5.0
    servers = set(store.client.topology_description.server_descriptions())
    assert servers == {("m1", 27017), ("m2", 27018)}


def test_mongodb_url_defaults_and_own_timeout(built: Callable[..., Any]) -> None:
    first = built("mongodb://m1/?serverSelectionTimeoutMS=1500")
    assert (first.collection.database.name, first.collection.name) == ("apscheduler", "jobs")
    assert first.client.options.server_selection_timeout == 1.5
    second = built("mongodb://m1/?serverSelectionTimeoutMS=1500")
    assert second.client is not first.client  # shutdown() closes it: one client per store


def test_rethinkdb_url(built: Callable[..., Any]) -> None:
    store = built(f"rethinkdb://ops:{SECRET}@rdb:28016/sched?table=t1")
    assert isinstance(store, store_class("rethinkdb", "RethinkDBJobStore"))
    assert (store.database, store.table_name) == ("sched", "t1")
    assert store.connect_args == {
        "host": "rdb",
        "port": 28016,
        "user": "ops",
        "password": SECRET,
        "timeout": 5.0,
    }


def test_rethinkdb_url_defaults(built: Callable[..., Any]) -> None:
    store = built("rethinkdb://rdb")
    assert (store.database, store.table_name) == ("apscheduler", "jobs")
    assert store.connect_args["port"] == 28015


def test_zookeeper_url(built: Callable[..., Any]) -> None:
    store = built("zookeeper://z1:2181,z2:2182/services/scheduler/jobs/")
    assert isinstance(store, store_class("zookeeper", "ZooKeeperJobStore"))
    assert store.path == "/services/scheduler/jobs"
    assert store.client.hosts == [("z1", 2181), ("z2", 2182)]
    assert store.close_connection_on_exit  # the client is ours: stop it with the store
    assert store.client._session_timeout == 5000
    # ZooKeeperJobStore.start() calls client.start() bare: its default must be bounded too.
    assert inspect.signature(store.client.start).parameters["timeout"].default == 5.0


def test_which_ids_a_store_may_hold(built: Callable[..., Any]) -> None:
    """Ids a store cannot hold are answered "not found" without asking it: its driver or
    server would raise instead (see JobService.get_job)."""
    stores = {
        url.split(":")[0]: built(url)
        for url in ("memory://", "redis://r", "zookeeper://z/j", "rethinkdb://r", "sqlite://")
    }
    ids = ["job-1", ".", "..", "\x00", "\U0001f600", "é", "x" * 128, "é" * 64, "a/b"]
    held = {kind: [may_hold(store, i) for i in ids] for kind, store in stores.items()}
    assert held == {
        "memory": [True] * 9,
        "redis": [True] * 9,
        "zookeeper": [True, False, False, False, False, True, True, True, False],
        "rethinkdb": [True, True, True, False, True, True, False, False, True],
        "sqlite": [True, True, True, False, True, True, True, True, True],
    }


def test_zookeeper_url_defaults_and_digest_auth(built: Callable[..., Any]) -> None:
    store = built(f"zookeeper://ops:{SECRET}@z1")
    assert store.path == "/apscheduler"
    assert store.client.hosts == [("z1", 2181)]
    assert ("digest", f"ops:{SECRET}") in store.client.auth_data
