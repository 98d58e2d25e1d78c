"""Job-store and executor registries: a settings dict or a URL in, an APScheduler instance out.

Each store type maps to a lazily imported class, the pip extra that installs its driver, and
three small functions defined just above it: ``prepare`` (bounded timeouts, a client of its own),
``probe`` (can the server be reached now?) and ``describe`` (what the info endpoint shows).
URL parsing lives in ``urls.py``. Nothing here imports APScheduler or a driver at module load.
"""

from __future__ import annotations

import importlib
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from ..errors import ConfigError, ServiceUnavailable
from .urls import parse_jobstore_url, redact_url, scrub, secrets_in

if TYPE_CHECKING:
    from apscheduler.executors.base import BaseExecutor
    from apscheduler.jobstores.base import BaseJobStore

TIMEOUT = 5.0  # seconds: the connect / server-selection / start timeout every driver gets

Options = dict[str, Any]


def _as_given(options: Options) -> Options:
    return options


def _nothing_to_probe(store: Any, timeout: float) -> None:
    """An in-process store is always reachable."""


def _nothing_to_describe(store: Any) -> dict[str, Any]:
    return {}


def _holds_any(job_id: str) -> bool:
    """The store can hold any id (a str): a lookup of any id is a plain miss."""
    return True


# --- sqlalchemy: any SQLAlchemy URL -----------------------------------------------------------
_CONNECT_TIMEOUT_DRIVERS = {"psycopg", "psycopg2", "pymysql", "mysqldb"}


def _prepare_sqlalchemy(options: Options) -> Options:
    if not isinstance(options.get("url"), str):
        return options  # an `engine` instead, or the store's own "need url or engine" error
    from sqlalchemy.engine import make_url

    url = make_url(options["url"])
    if url.get_backend_name() == "sqlite":
        return options  # its folder is made on first connect (sqlstore), not when built
    engine_options = {"pool_pre_ping": True, **(options.get("engine_options") or {})}
    connect_args = dict(engine_options.get("connect_args") or {})
    if url.get_driver_name() in _CONNECT_TIMEOUT_DRIVERS and "connect_timeout" not in url.query:
        connect_args.setdefault("connect_timeout", int(TIMEOUT))
    return {**options, "engine_options": {**engine_options, "connect_args": connect_args}}


def sqlite_file_missing(store: BaseJobStore) -> Path | None:
    """Return the file of a SQLite job store that does not exist yet (a probe would make it)."""
    from ..sqlitefiles import sqlite_file

    engine = getattr(store, "engine", None)
    path = sqlite_file(engine.url) if engine is not None else None
    return path if path is not None and not path.exists() else None


def _probe_sqlalchemy(store: Any, timeout: float) -> None:
    with store.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")


def _sql_holds(job_id: str) -> bool:
    """PostgreSQL text cannot hold a NUL (psycopg raises on the query): no job has one."""
    return "\x00" not in job_id


def _describe_sqlalchemy(store: Any) -> dict[str, Any]:
    url = store.engine.url.render_as_string(hide_password=True)
    return {"url": url, "table": store.jobs_t.fullname}


# --- redis: redis[s]://[[user]:password@]host:6379/0?jobs_key=&run_times_key= ------------------
def _prepare_redis(options: Options) -> Options:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One immediate retry survives a stale pooled connection; redis-py's default backoff would
    # keep a refused connection (and so probe_jobstore) waiting for seconds.
    defaults = {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT}
    return {**defaults, "retry": Retry(NoBackoff(), 1), **options}


def _probe_redis(store: Any, timeout: float) -> None:
    store.redis.ping()


def _describe_redis(store: Any) -> dict[str, Any]:
    pool = store.redis.connection_pool
    kwargs = pool.connection_kwargs
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    user = f"{quote(kwargs['username'])}@" if kwargs.get("username") else ""
    url = f"{scheme}://{user}{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"
    return {"url": url, "jobs_key": store.jobs_key, "run_times_key": store.run_times_key}


# --- mongodb: mongodb://[user:pass@]host:27017/database?collection=jobs ------------------------
_MONGODB_STORE_KEYS = ("database", "collection", "pickle_protocol")


def _prepare_mongodb(options: Options) -> Options:
    if options.get("client") is not None:
        return options
    own = {key: options[key] for key in _MONGODB_STORE_KEYS if key in options}
    for key in ("database", "collection"):
        if key in own and not own[key]:  # the store checks too, but after our client exists
            raise ValueError(f"the {key!r} option must not be empty")
    connect = {k: v for k, v in options.items() if k not in (*_MONGODB_STORE_KEYS, "client")}
    host = connect.get("host")
    given = {key.lower() for key in connect}
    if isinstance(host, str) and "?" in host:
        given |= {key.lower() for key, _ in parse_qsl(host.split("?", 1)[1])}
    if "serverselectiontimeoutms" not in given:
        connect["serverSelectionTimeoutMS"] = int(TIMEOUT * 1000)
    from pymongo import MongoClient

    with warnings.catch_warnings():  # pymongo ignores a bad URL option with a warning: refuse it
        warnings.simplefilter("error", UserWarning)
        client = MongoClient(**connect)
    return {**own, "client": client}  # the store closes it on shutdown: one client per store


def _probe_mongodb(store: Any, timeout: float) -> None:
    import pymongo

    with pymongo.timeout(max(timeout - 0.5, 0.1)):  # server selection re-checks every 0.5 s
        store.client.admin.command("ping")


def _describe_mongodb(store: Any) -> dict[str, Any]:
    servers = store.client.topology_description.server_descriptions()
    return {
        "hosts": [f"{host}:{port}" for host, port in servers],
        "database": store.collection.database.name,
        "collection": store.collection.name,
    }


# --- rethinkdb: rethinkdb://[user:pass@]host:28015/database?table=jobs -------------------------
_RETHINKDB_KEYS = {"database", "table", "client", "pickle_protocol"}
_RETHINKDB_CONNECT = {"host", "port", "user", "password", "auth_key", "timeout", "ssl"}


def _prepare_rethinkdb(options: Options) -> Options:
    # The store hands unknown options to r.connect() only when it starts: refuse them now.
    unknown = sorted(set(options) - _RETHINKDB_KEYS - _RETHINKDB_CONNECT)
    if unknown:
        raise TypeError(f"RethinkDBJobStore got an unexpected keyword argument {unknown[0]!r}")
    return {"timeout": TIMEOUT, **options}


def _probe_rethinkdb(store: Any, timeout: float) -> None:
    if store.conn is not None and not store.conn.is_open():
        raise ConnectionError("the store's connection is closed")
    # A connection of our own: the store's one is not safe to share with the scheduler thread.
    store.r.connect(**{**store.connect_args, "timeout": timeout}).close()


def _rethinkdb_holds(job_id: str) -> bool:
    """Primary keys stop at 127 bytes: a longer one is a query error, not a miss."""
    return len(job_id.encode()) <= 127 and "\x00" not in job_id


def _describe_rethinkdb(store: Any) -> dict[str, Any]:
    host, port = store.connect_args.get("host", "localhost"), store.connect_args.get("port", 28015)
    return {"host": f"{host}:{port}", "database": store.database, "table": store.table_name}


# --- zookeeper: zookeeper://host:2181[,host2:2181]/path/to/jobs --------------------------------
_ZOOKEEPER_STORE_KEYS = ("path", "close_connection_on_exit", "pickle_protocol")


@cache
def _bounded_kazoo_client() -> type:
    from kazoo.client import KazooClient

    class BoundedKazooClient(KazooClient):
        """Give up after TIMEOUT s: ZooKeeperJobStore.start() calls start() bare (15 s)."""

        def start(self, timeout: float = TIMEOUT) -> None:
            super().start(timeout=timeout)

    return BoundedKazooClient


def _prepare_zookeeper(options: Options) -> Options:
    if options.get("client") is not None:
        return options
    own = {key: options[key] for key in _ZOOKEEPER_STORE_KEYS if key in options}
    connect = {k: v for k, v in options.items() if k not in (*_ZOOKEEPER_STORE_KEYS, "client")}
    connect.setdefault("timeout", TIMEOUT)
    # The client is ours, so the store stops it on shutdown (its default leaves it running).
    own.setdefault("close_connection_on_exit", True)
    return {**own, "client": _bounded_kazoo_client()(**connect)}


def _probe_zookeeper(store: Any, timeout: float) -> None:
    from kazoo.protocol.states import KeeperState

    client = store.client
    if client.connected:
        return
    if client.client_state != KeeperState.CLOSED:  # started: kazoo is reconnecting by itself
        raise ConnectionError(f"session {client.state.lower()}, reconnecting")
    client.start(timeout=timeout)  # never started (or stopped): connect now, as store.start would


# Characters ZooKeeper refuses in a znode name (PathUtils.validatePath), as Java sees them:
# a character outside the BMP is a surrogate pair, in the refused \ud800-\uf8ff.
_ZOOKEEPER_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\U0010ffff/]")


def _zookeeper_holds(job_id: str) -> bool:
    """A znode name: not "." or "..", none of the refused characters (a bad path is an
    error from the server, not a miss)."""
    return job_id not in (".", "..") and not _ZOOKEEPER_REFUSED.search(job_id)


def _describe_zookeeper(store: Any) -> dict[str, Any]:
    hosts = ",".join(f"{host}:{port}" for host, port in store.client.hosts)
    return {"hosts": hosts, "path": store.path}


# --- the job-store registry ---------------------------------------------------------------------
@dataclass(frozen=True)
class _StoreType:
    target: str  # "module:Class", imported on first use
    extra: str | None  # the pyproject extra that installs the driver; None: always installed
    prepare: Callable[[Options], Options] = _as_given
    probe: Callable[[Any, float], None] = _nothing_to_probe
    describe: Callable[[Any], dict[str, Any]] = _nothing_to_describe
    holds: Callable[[str], bool] = _holds_any  # could a job of the store have this id?


_JOBSTORES: dict[str, _StoreType] = {
    "memory": _StoreType("apscheduler.jobstores.memory:MemoryJobStore", None),
    "sqlalchemy": _StoreType(
        "scheduler_service.scheduler.sqlstore:SharedSQLAlchemyJobStore",  # replicas share tables
        None,  # SQLAlchemy is a dependency; the SQL drivers come with _SQL_EXTRAS
        _prepare_sqlalchemy,
        _probe_sqlalchemy,
        _describe_sqlalchemy,
        _sql_holds,
    ),
    "redis": _StoreType(
        "apscheduler.jobstores.redis:RedisJobStore",
        "redis",
        _prepare_redis,
        _probe_redis,
        _describe_redis,
    ),
    "mongodb": _StoreType(
        "apscheduler.jobstores.mongodb:MongoDBJobStore",
        "mongodb",
        _prepare_mongodb,
        _probe_mongodb,
        _describe_mongodb,
    ),
    "rethinkdb": _StoreType(
        "apscheduler.jobstores.rethinkdb:RethinkDBJobStore",
        "rethinkdb",
        _prepare_rethinkdb,
        _probe_rethinkdb,
        _describe_rethinkdb,
        _rethinkdb_holds,
    ),
    "zookeeper": _StoreType(
        "apscheduler.jobstores.zookeeper:ZooKeeperJobStore",
        "zookeeper",
        _prepare_zookeeper,
        _probe_zookeeper,
        _describe_zookeeper,
        _zookeeper_holds,
    ),
}
_SQL_TYPES = ("sqlite", "postgres", "postgresql", "mysql", "mariadb")  # sqlalchemy, with a url
_SQL_EXTRAS = {"psycopg": "postgres", "pymysql": "mysql"}  # the SQL drivers we ship
_BY_TARGET = {
    **{entry.target: name for name, entry in _JOBSTORES.items()},
    "apscheduler.jobstores.sqlalchemy:SQLAlchemyJobStore": "sqlalchemy",  # an instance, as given
}
JOBSTORE_TYPES: tuple[str, ...] = (*_JOBSTORES, *_SQL_TYPES)

_EXECUTORS = {
    "threadpool": "scheduler_service.firing.executors:AppThreadPoolExecutor",
    "processpool": "scheduler_service.firing.executors:AppProcessPoolExecutor",
}
_EXECUTOR_ALIASES = {"thread": "threadpool", "process": "processpool"}
EXECUTOR_TYPES: tuple[str, ...] = (*_EXECUTORS, *_EXECUTOR_ALIASES)


def build_jobstore(alias: str, spec: Mapping[str, Any] | str | BaseJobStore) -> BaseJobStore:
    """Return the job store that ``spec`` (a store, a URL or a ``{"type": ...}`` dict) describes.

    :raises ConfigError: bad spec or missing driver; the message starts with
        ``SCHEDULER_JOBSTORES['<alias>']: `` and holds no password.
    """
    from apscheduler.jobstores.base import BaseJobStore

    where = f"SCHEDULER_JOBSTORES[{alias!r}]"
    if isinstance(spec, BaseJobStore):
        return spec
    if isinstance(spec, str):
        type_, url, options = None, spec, {}
    elif isinstance(spec, Mapping):
        options = _copy(where, spec, JOBSTORE_TYPES)
        type_, url = options.pop("type", None), options.pop("url", None)
    else:
        kind = type(spec).__name__
        raise ConfigError(f"{where}: expected a URL or a {{'type': ...}} dict, got a {kind}")
    type_, options = _resolve_jobstore(where, type_, url, options)
    entry = _JOBSTORES[type_]
    secrets = secrets_in(options)
    try:
        store = _load(entry.target)(**entry.prepare(options))
    except ImportError as exc:
        missing = exc.name or getattr(exc.__cause__, "name", None) or entry.extra or type_
        package = {"bson": "pymongo"}.get(missing.split(".")[0], missing.split(".")[0])
        extra = _SQL_EXTRAS.get(package, entry.extra)
        how = f"pip install 'scheduler-service[{extra}]'" if extra else f"pip install {package}"
        msg = f"{where}: the {type_} job store needs the {package!r} package: {how}"
        raise ConfigError(msg) from None
    except Exception as exc:
        cause = scrub(f"{exc}", secrets)
        raise ConfigError(f"{where}: invalid option for the {type_} job store: {cause}") from None
    store._ss_alias = alias
    store._ss_secrets = secrets
    store._ss_url = redact_url(url) if isinstance(url, str) else None
    return store


def build_executor(alias: str, spec: Mapping[str, Any] | BaseExecutor) -> BaseExecutor:
    """Return the executor that ``spec`` (an executor or a ``{"type": ...}`` dict) describes.

    :raises ConfigError: bad spec; the message starts with ``SCHEDULER_EXECUTORS['<alias>']: ``.
    """
    from apscheduler.executors.base import BaseExecutor

    where = f"SCHEDULER_EXECUTORS[{alias!r}]"
    if isinstance(spec, BaseExecutor):
        return spec
    if not isinstance(spec, Mapping):
        kind = type(spec).__name__
        raise ConfigError(f"{where}: expected a {{'type': ...}} dict, got a {kind}")
    options = _copy(where, spec, EXECUTOR_TYPES)
    type_ = options.pop("type", None)
    if type_ not in EXECUTOR_TYPES:
        given = "no type" if type_ is None else f"unknown type {type_!r}"
        raise ConfigError(f"{where}: {given}; known types: {', '.join(EXECUTOR_TYPES)}")
    type_ = _EXECUTOR_ALIASES.get(type_, type_)
    assert type_ is not None  # one of EXECUTOR_TYPES, checked above
    workers = options.get("max_workers", 1)
    if type(workers) is not int or workers < 1:
        raise ConfigError(f"{where}: max_workers must be a positive integer, got {workers!r}")
    try:
        return _load(_EXECUTORS[type_])(**options)
    except Exception as exc:
        raise ConfigError(f"{where}: invalid option for the {type_} executor: {exc}") from None


def probe_jobstore(store: BaseJobStore, *, timeout: float = 5.0) -> None:
    """Check that ``store`` reaches its server now, waiting at most ``timeout`` seconds.

    :raises ServiceUnavailable: the server did not answer in time, or answered with an error.
    """
    type_, entry = _store_type(store)
    if entry is None:
        return  # a store class we did not build: nothing we know how to check
    outcome: list[Exception | None] = []

    def check() -> None:
        try:
            entry.probe(store, timeout * 0.8)  # let the driver's own timeout say why, first
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)

    # A thread bounds every driver, including those whose calls take no timeout of their own.
    worker = threading.Thread(target=check, name=f"probe-{type_}", daemon=True)
    worker.start()
    worker.join(timeout)
    error = outcome[0] if outcome else TimeoutError(f"no answer within {timeout:g} s")
    if error is not None:
        first_line = (f"{error}".strip().splitlines() or [""])[0]
        secrets = getattr(store, "_ss_secrets", ())
        cause = scrub(f"{type(error).__name__}: {first_line}"[:200], secrets)
        msg = f"job store '{_alias_of(store)}' ({type_}) is unreachable: {cause}"
        raise ServiceUnavailable(msg) from None


def may_hold(store: BaseJobStore, job_id: str) -> bool:
    """Tell whether a job of ``store`` could have the id ``job_id``. An id that the store
    cannot hold makes some drivers raise instead of missing (ZooKeeper for ".", PostgreSQL for
    a NUL): such a lookup is answered "not found" without asking."""
    entry = _store_type(store)[1]
    return entry is None or entry.holds(job_id)


def describe_jobstore(store: BaseJobStore) -> dict[str, Any]:
    """Return the store's alias, type and location (URL, host, table...) without any password."""
    type_, entry = _store_type(store)
    info = {"alias": _alias_of(store), "type": type_}
    if entry is not None:
        info.update(entry.describe(store))
    if getattr(store, "_ss_url", None):
        info.setdefault("url", store._ss_url)
    return info


def _resolve_jobstore(where: str, type_: Any, url: Any, options: Options) -> tuple[str, Options]:
    if type_ is not None and type_ not in JOBSTORE_TYPES:
        raise ConfigError(
            f"{where}: unknown type {type_!r}; known types: {', '.join(JOBSTORE_TYPES)}"
        )
    if url is None:
        if type_ is None:
            raise ConfigError(f"{where}: give a 'type' ({', '.join(_JOBSTORES)}) or a 'url'")
        if type_ in _SQL_TYPES:
            raise ConfigError(f"{where}: type {type_!r} needs a 'url', e.g. sqlite:///jobs.db")
        return type_, options
    if not isinstance(url, str):
        raise ConfigError(f"{where}: 'url' must be a string, got {type(url).__name__}")
    try:
        url_type, url_options = parse_jobstore_url(url)
    except ValueError as exc:
        # Not shown unless it looks like a URL: a value with no scheme might be a bare password.
        shown = f" {redact_url(url)!r}" if "://" in url else ""
        raise ConfigError(f"{where}: bad job store URL{shown}: {exc}") from None
    if type_ is not None and ("sqlalchemy" if type_ in _SQL_TYPES else type_) != url_type:
        raise ConfigError(
            f"{where}: type {type_!r} does not match {redact_url(url)!r} ({url_type})"
        )
    return url_type, {**url_options, **options}


def _copy(where: str, spec: Mapping[str, Any], known: Iterable[str]) -> Options:
    """Copy ``spec`` two levels deep (APScheduler pops keys and fills nested option dicts)."""
    if "class" in spec:
        raise ConfigError(
            f"{where}: 'class' is not allowed (no arbitrary class paths); "
            f"use 'type', one of: {', '.join(known)}"
        )
    return {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in spec.items()
    }


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _store_type(store: Any) -> tuple[str, _StoreType | None]:
    for cls in type(store).__mro__:
        name = _BY_TARGET.get(f"{cls.__module__}:{cls.__qualname__}")
        if name is not None:
            return name, _JOBSTORES[name]
    return type(store).__name__, None


def _alias_of(store: Any) -> str:
    return str(store._alias or getattr(store, "_ss_alias", None) or "?")
