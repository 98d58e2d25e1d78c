"""The job-store registry: the dict form, its errors, probes and descriptions, live round trips.

The live tests run one body over every store against the servers that
``make services`` (scripts/services.sh) starts (``TEST_*`` variables); with ``REQUIRE_SERVICES=1`` a
missing server fails the run instead of skipping. MongoDB and RethinkDB are emulators there, and
their test ids say so (``mongodb-emulator``), unless ``TEST_*_SERVER`` says ``real`` or is unset.
"""

from __future__ import annotations

import copy
import json
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED

from scheduler_service.errors import ConfigError, ServiceUnavailable
from scheduler_service.stores import (
    JOBSTORE_TYPES,
    build_jobstore,
    describe_jobstore,
    parse_jobstore_url,
    probe_jobstore,
)
from tests.live_stores import LIVE, Live
from tests.support.backends import service_url

SECRET = "s3cr3t-Pa55"  # put in URLs and options; must never reach a message or a description


# --- dict form ----------------------------------------------------------------------------------
def test_dict_url_is_parsed_and_other_keys_override(built: Callable[..., Any]) -> None:
    store = built({"type": "redis", "url": "redis://cache/3?jobs_key=a", "jobs_key": "b"})
    assert store.redis.connection_pool.connection_kwargs["db"] == 3
    assert store.jobs_key == "b"


def test_dict_without_url(built: Callable[..., Any]) -> None:
    store = built({"type": "redis", "host": "cache", "port": 6390, "db": 4, "jobs_key": "k"})
    kwargs = store.redis.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], store.jobs_key) == ("cache", 6390, 4, "k")
    assert isinstance(built({"type": "memory"}), MemoryJobStore)
    assert isinstance(built({"url": "memory://"}), MemoryJobStore)


@pytest.mark.parametrize("sql_type", ["sqlite", "postgres", "postgresql", "mysql", "mariadb"])
def test_dict_sql_type_aliases_with_url(
    built: Callable[..., Any], tmp_path: Path, sql_type: str
) -> None:
    spec = {"type": sql_type, "url": f"sqlite:///{tmp_path}/jobs.db", "tablename": "t"}
    store = built(spec)
    assert isinstance(store, SQLAlchemyJobStore)
    assert store.jobs_t.name == "t"
    assert sql_type in JOBSTORE_TYPES


def test_store_instances_are_returned_as_is() -> None:
    store = MemoryJobStore()
    assert build_jobstore("mine", store) is store


@pytest.mark.parametrize(
    "spec",
    [
        {
            "type": "sqlalchemy",
            "url": f"postgresql://app:{SECRET}@db/jobs",
            "engine_options": {"echo": False, "connect_args": {"application_name": "x"}},
        },
        {"type": "redis", "url": "redis://cache/1", "jobs_key": "k"},
        {"type": "mongodb", "url": "mongodb://m1/sched", "collection": "c"},
        {"type": "rethinkdb", "host": "rdb", "database": "d"},
        {"type": "zookeeper", "hosts": "z1:2181", "path": "/p"},
    ],
    ids=lambda spec: spec["type"],
)
def test_the_callers_dict_is_not_changed(built: Callable[..., Any], spec: dict) -> None:
    before = copy.deepcopy(spec)
    first, second = built(spec), built(spec)
    assert spec == before
    assert type(first) is type(second)


# --- ConfigError: named after the alias, never holding a password -----------------------------
@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"type": "cassandra"}, "unknown type 'cassandra'; known types: memory, sqlalchemy"),
        ({"class": "apscheduler.jobstores.redis:RedisJobStore"}, "'class' is not allowed"),
        ({"type": "redis", "class": "x:Y", "password": SECRET}, "use 'type'"),
        ({"type": "postgres"}, "type 'postgres' needs a 'url'"),
        ({"password": SECRET}, "give a 'type'"),
        ({"type": "redis", "url": f"postgresql://u:{SECRET}@db/x"}, "does not match"),
        ({"type": "redis", "url": 5}, "'url' must be a string"),
        (f"cassandra://u:{SECRET}@db/x", "unknown scheme 'cassandra'"),
        (f"no-scheme-{SECRET}", "not a URL"),
        (f"redis://:{SECRET}@cache/zero", "database number"),
        (f"redis://:{SECRET}@cache:port/0", "malformed URL"),
        (f"redis://:{SECRET}@cache/0?jobskey=x", "unknown option 'jobskey'"),
        (f"postgresql://u:{SECRET}@db:abc/x", "not a valid SQLAlchemy URL"),
        ("memory://somewhere", "memory:// takes no host"),
        (f"zookeeper://u:{SECRET}@z1:2181,z2:two/p", "not a host[:port]: 'z2:two'"),
        (f"rethinkdb://u:{SECRET}@rdb/d?tabel=t", "unknown option 'tabel'"),
        (f"mongodb://u:{SECRET}@/d", "needs a host"),
        ({"type": "sqlalchemy", "url": "sqlite://", "echo": True}, "argument 'echo'"),
        ({"type": "redis", "password": SECRET, "colour": "red"}, "argument 'colour'"),
        ({"type": "mongodb", "url": f"mongodb://u:{SECRET}@m1/d?colour=red"}, "Unknown option"),
        ({"type": "mongodb", "host": "m1", "colour": "red"}, "Unknown option: colour"),
        ({"type": "rethinkdb", "password": SECRET, "colour": "red"}, "argument 'colour'"),
        ({"type": "zookeeper", "auth_data": [("digest", f"u:{SECRET}")], "colour": 1}, "colour"),
        ({"type": "redis", "url": f"redis://:{SECRET}@c", "jobs_key": ""}, "jobs_key"),
        (42, "expected a URL or a {'type': ...} dict"),
    ],
)
def test_bad_specs_raise_config_error(spec: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_jobstore("bad", spec)
    message = str(caught.value)
    assert message.startswith("SCHEDULER_JOBSTORES['bad']: ")
    assert fragment in message
    assert SECRET not in message


def test_bad_url_message_shows_the_redacted_url() -> None:
    with pytest.raises(ConfigError, match=r"'redis://:\*\*\*@cache/zero'"):
        build_jobstore("bad", f"redis://:{SECRET}@cache/zero")


@pytest.mark.parametrize(
    ("url", "missing", "extra"),
    [
        ("redis://cache", ["redis"], "redis"),
        ("zookeeper://z1", ["kazoo", "kazoo.client", "kazoo.exceptions"], "zookeeper"),
        ("mongodb://m1", ["pymongo", "bson", "bson.binary"], "mongodb"),
        ("rethinkdb://rdb", ["rethinkdb"], "rethinkdb"),
        ("postgresql://db/x", ["psycopg"], "postgres"),
        ("mysql://db/x", ["pymysql"], "mysql"),
    ],
)
def test_missing_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, missing: list[str], extra: str
) -> None:
    for module in missing:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    kind = parse_jobstore_url(url)[0]
    monkeypatch.delitem(sys.modules, f"apscheduler.jobstores.{kind}", raising=False)
    with pytest.raises(ConfigError) as caught:
        build_jobstore("x", url)
    assert str(caught.value) == (
        f"SCHEDULER_JOBSTORES['x']: the {kind} job store needs the {missing[0]!r} package: "
        f"pip install 'scheduler-service[{extra}]'"
    )


# --- describe_jobstore and probe_jobstore without a server -------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", {"type": "memory", "url": "memory://"}),
        (
            f"postgresql://app:{SECRET}@db/jobs?tablename=t",
            {"type": "sqlalchemy", "url": "postgresql+psycopg://app:***@db/jobs", "table": "t"},
        ),
        (
            f"rediss://ops:{SECRET}@cache:6380/2?jobs_key=k",
            {"type": "redis", "url": "rediss://ops@cache:6380/2", "jobs_key": "k"},
        ),
        (
            f"mongodb://app:{SECRET}@m1/sched?collection=c",
            {"type": "mongodb", "hosts": ["m1:27017"], "database": "sched", "collection": "c"},
        ),
        (
            f"rethinkdb://ops:{SECRET}@rdb/sched",
            {"type": "rethinkdb", "host": "rdb:28015", "database": "sched", "table": "jobs"},
        ),
        (
            f"zookeeper://ops:{SECRET}@z1,z2:2182/p",
            {"type": "zookeeper", "hosts": "z1:2181,z2:2182", "path": "/p"},
        ),
    ],
    ids=lambda value: value.split(":")[0] if isinstance(value, str) else None,
)
def test_describe_jobstore(built: Callable[..., Any], url: str, expected: dict) -> None:
    info = describe_jobstore(built(url, alias="main"))
    assert info["alias"] == "main"
    assert expected.items() <= info.items()
    assert SECRET not in json.dumps(info)


def test_describe_uses_the_schedulers_alias_once_started() -> None:
    store = build_jobstore("configured", "memory://")
    scheduler = BackgroundScheduler(jobstores={"started": store})
    scheduler.start(paused=True)
    try:
        assert describe_jobstore(store)["alias"] == "started"
    finally:
        scheduler.shutdown()


def test_probe_memory_store_is_always_fine() -> None:
    assert probe_jobstore(build_jobstore("m", "memory://")) is None


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:1/0",
        f"postgresql://app:{SECRET}@127.0.0.1:1/jobs",
        f"mysql://app:{SECRET}@127.0.0.1:1/jobs",
        f"rethinkdb://ops:{SECRET}@127.0.0.1:1/sched",
    ],
    ids=lambda url: url.split(":")[0],
)
def test_probe_refused_port_fails_fast(built: Callable[..., Any], url: str) -> None:
    store = built(url, alias="down")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        probe_jobstore(store, timeout=3.0)
    assert time.monotonic() - started < 3.0
    kind = describe_jobstore(store)["type"]
    assert str(caught.value).startswith(f"job store 'down' ({kind}) is unreachable: ")
    assert "refused" in str(caught.value).lower()
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [f"mongodb://app:{SECRET}@127.0.0.1:1/sched", f"zookeeper://ops:{SECRET}@127.0.0.1:1/p"],
    ids=lambda url: url.split(":")[0],
)
def test_probe_refused_port_gives_up_within_the_timeout(
    built: Callable[..., Any], url: str
) -> None:
    # These drivers retry until their own deadline, which probe_jobstore sets below its timeout.
    store = built(url, alias="down")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        probe_jobstore(store, timeout=1.5)
    assert time.monotonic() - started < 1.5 + 0.25
    assert str(caught.value).startswith("job store 'down' (")
    assert SECRET not in str(caught.value)


def test_probe_of_a_silent_server_is_bounded(built: Callable[..., Any]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        store = built(f"redis://:{SECRET}@127.0.0.1:{port}/0", alias="mute")
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match=r"no answer within 0\.5 s") as caught:
            probe_jobstore(store, timeout=0.5)
        assert time.monotonic() - started < 1.0
        assert str(caught.value).startswith("job store 'mute' (redis) is unreachable: ")


# --- live servers: one body, every store --------------------------------------------------------
@pytest.fixture(params=list(LIVE))
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    """A live store namespace of its own (table, keys, path, collection), dropped afterwards."""
    variable, make = LIVE[request.param]
    base = f"sqlite:///{tmp_path}/new-folder/jobs.db" if variable is None else service_url(variable)
    backend = make(base, f"ss_test_{uuid.uuid4().hex[:12]}")
    yield backend
    backend.drop()


class StoppableScheduler(BackgroundScheduler):
    """Skip the _process_jobs() that APScheduler 3.11 runs after shutdown(), on closed stores."""

    def _process_jobs(self) -> float | None:
        return None if self.state == STATE_STOPPED else super()._process_jobs()


@pytest.mark.services
def test_live_round_trip(live: Live) -> None:
    store = build_jobstore("live", live.url)
    probe_jobstore(store)  # before the scheduler starts it: the start-up check
    scheduler = StoppableScheduler(jobstores={"default": store}, timezone="UTC")
    scheduler.start(paused=True)  # paused: the store is started, nothing fires
    try:
        probe_jobstore(store)  # after: the /readyz check
        info = describe_jobstore(store)
        assert info["alias"] == "default"
        password = urlsplit(live.url).password
        assert not password or f":{password}@" not in json.dumps(info)

        scheduler.add_job("operator:add", "interval", minutes=5, id="rt", args=(1, 2))
        assert live.holds("rt")  # in this test's namespace, not the default one

        second = StoppableScheduler(
            jobstores={"default": build_jobstore("second", live.url)}, timezone="UTC"
        )
        second.start(paused=True)
        try:
            job = second.get_job("rt")
            assert job is not None
            assert (job.func_ref, job.args, job.trigger.interval.total_seconds()) == (
                "operator:add",
                (1, 2),
                300,
            )
            scheduler.remove_job("rt")
            assert second.get_job("rt") is None
            assert not live.holds("rt")
        finally:
            second.shutdown()
    finally:
        scheduler.shutdown()  # stop the scheduler before the fixture drops the namespace
