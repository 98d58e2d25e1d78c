"""Job stores: one module per backend, and the one registry of them here.

A settings dict or a URL goes in, an APScheduler job store comes out (``build_jobstore``); the
rest of the service asks this package about a store (probe, describe, which ids it may hold,
paging, counting, writing a pass back), and the store's backend module answers. A store's type
is found once, by its class (``_backend_of``). Nothing here imports APScheduler's store classes
or a driver at import: each backend module imports its driver when it is first used.

Adding a backend: a module beside ``redis.py`` that defines its ``BACKEND`` (see ``base.py``),
one line in ``BACKENDS`` below, and a ``tests/live_stores.py`` entry so the store suite runs
on it.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ServiceUnavailable
from ..redact import redact_url, scrub, secrets_in
from . import memory, mongodb, redis, rethinkdb, sql, zookeeper
from .base import Backend, Options, StorePager, copy_spec, write_one_by_one

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.jobstores.base import BaseJobStore

__all__ = [
    "JOBSTORE_TYPES",
    "StorePager",
    "build_jobstore",
    "connection_errors",
    "count_jobs",
    "describe_jobstore",
    "may_hold",
    "pager",
    "parse_jobstore_url",
    "probe_jobstore",
    "sqlite_file_missing",
    "write_back",
]

BACKENDS: tuple[Backend, ...] = (
    memory.BACKEND,
    sql.BACKEND,
    redis.BACKEND,
    mongodb.BACKEND,
    rethinkdb.BACKEND,
    zookeeper.BACKEND,
)
_BY_NAME = {backend.name: backend for backend in BACKENDS}
_BY_URL_TYPE = {name: backend for backend in BACKENDS for name in backend.url_types}
_BY_SCHEME = {scheme: backend for backend in BACKENDS for scheme in backend.schemes}
_BY_TARGET = {target: backend for backend in BACKENDS for target in (backend.target, *backend.also)}
JOBSTORE_TYPES: tuple[str, ...] = (*_BY_NAME, *_BY_URL_TYPE)


@dataclass(frozen=True)
class _Origin:
    """What build_jobstore knew of a store: kept on it as ``_ss_origin``."""

    alias: str | None = None  # the settings' alias, until a scheduler gives it its own
    secrets: tuple[str, ...] = ()  # masked in every message about the store
    url: str | None = None  # as given, password redacted


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
        options = copy_spec(where, spec, JOBSTORE_TYPES)
        type_, url = options.pop("type", None), options.pop("url", None)
    else:
        kind = type(spec).__name__
        raise ConfigError(f"{where}: expected a URL or a {{'type': ...}} dict, got a {kind}")
    backend, options = _resolve(where, type_, url, options)
    secrets = secrets_in(options)
    try:
        store = _load(backend.target)(**backend.prepare(options))
    except ImportError as exc:
        raise ConfigError(_missing_driver(where, backend, exc)) from None
    except Exception as exc:
        cause = scrub(f"{exc}", secrets)
        msg = f"{where}: invalid option for the {backend.name} job store: {cause}"
        raise ConfigError(msg) from None
    shown = redact_url(url) if isinstance(url, str) else None
    store._ss_origin = _Origin(alias, secrets, shown)
    return store


def parse_jobstore_url(url: str) -> tuple[str, dict[str, Any]]:
    """Return the job-store type and the constructor options that ``url`` names.

    :raises ValueError: the URL is malformed or its scheme names no job store.
    """
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError("not a URL: expected scheme://..., e.g. sqlite:///jobs.db or memory://")
    backend = _BY_SCHEME.get(scheme.lower())
    if backend is not None:
        return backend.name, backend.parse(url)
    try:  # any other scheme may be a SQLAlchemy dialect: postgres://, mariadb+pymysql://...
        return sql.BACKEND.name, sql.parse(url)
    except sql.UnknownDatabase:
        known = ", ".join(f"{s}://" for s in _BY_SCHEME)
        raise ValueError(f"unknown scheme {scheme!r}: use {known} or an SQLAlchemy URL") from None


def probe_jobstore(store: BaseJobStore, *, timeout: float = 5.0) -> None:
    """Check that ``store`` reaches its server now, waiting at most ``timeout`` seconds.

    :raises ServiceUnavailable: the server did not answer in time, or answered with an error.
    """
    backend = _backend_of(store)
    if backend is None:
        return  # a store class we did not build: nothing we know how to check
    outcome: list[Exception | None] = []

    def check() -> None:
        try:
            backend.probe(store, timeout * 0.8)  # let the driver's own timeout say why, first
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)

    # A thread bounds every driver, including those whose calls take no timeout of their own.
    worker = threading.Thread(target=check, name=f"probe-{backend.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    error = outcome[0] if outcome else TimeoutError(f"no answer within {timeout:g} s")
    if error is not None:
        first_line = (f"{error}".strip().splitlines() or [""])[0]
        cause = scrub(f"{type(error).__name__}: {first_line}"[:200], _origin_of(store).secrets)
        msg = f"job store '{_alias_of(store)}' ({backend.name}) is unreachable: {cause}"
        raise ServiceUnavailable(msg) from None


def may_hold(store: BaseJobStore, job_id: str) -> bool:
    """Tell whether a job of ``store`` could have the id ``job_id``. An id that the store
    cannot hold makes some drivers raise instead of missing (ZooKeeper for ".", PostgreSQL for
    a NUL): such a lookup is answered "not found" without asking."""
    backend = _backend_of(store)
    return backend is None or backend.holds(job_id)


def describe_jobstore(store: BaseJobStore) -> dict[str, Any]:
    """Return the store's alias, type and location (URL, host, table...) without any password."""
    backend = _backend_of(store)
    info = {"alias": _alias_of(store), "type": backend.name if backend else type(store).__name__}
    if backend is not None:
        info.update(backend.describe(store))
    url = _origin_of(store).url
    if url:
        info.setdefault("url", url)
    return info


def sqlite_file_missing(store: BaseJobStore) -> Path | None:
    """Return the file of a SQLite job store that does not exist yet (a probe would make it)."""
    backend = _backend_of(store)
    return backend.missing_file(store) if backend is not None else None


def pager(store: BaseJobStore) -> StorePager | None:
    """Return the store's fast path for counts and pages, or None when it has none."""
    backend = _backend_of(store)
    return backend.pager(store) if backend is not None and backend.pager is not None else None


def count_jobs(store: BaseJobStore) -> int:
    """How many jobs ``store`` holds: counted at the store where it can (nothing unpickled),
    else by reading them all."""
    fast = pager(store)
    return fast.total(None) if fast is not None else len(store.get_all_jobs())


def connection_errors() -> tuple[type[BaseException], ...]:
    """Return the errors that say a job store is out of reach: the builtin ones, and those of
    every driver loaded so far. A driver's error can only be raised once its module is loaded,
    so none is imported here (importing every installed driver costs about 90 ms and 15 MB)."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name, name in (pair for b in BACKENDS for pair in b.connection_errors):
        module = sys.modules.get(module_name)
        error = getattr(module, name, None) if module is not None else None
        if isinstance(error, type) and issubclass(error, BaseException):
            types.append(error)
    return tuple(types)


def write_back(store: BaseJobStore, updated: Sequence[Job], removed: Sequence[str]) -> None:
    """Store the new state of ``updated`` jobs and delete the ``removed`` ids, in as few
    round trips as the store allows (see ``base.py``)."""
    if not updated and not removed:
        return
    backend = _backend_of(store)
    (backend.write_back if backend is not None else write_one_by_one)(store, updated, removed)


def _resolve(where: str, type_: Any, url: Any, options: Options) -> tuple[Backend, Options]:
    if type_ is not None and type_ not in JOBSTORE_TYPES:
        raise ConfigError(
            f"{where}: unknown type {type_!r}; known types: {', '.join(JOBSTORE_TYPES)}"
        )
    if url is None:
        if type_ is None:
            raise ConfigError(f"{where}: give a 'type' ({', '.join(_BY_NAME)}) or a 'url'")
        if type_ in _BY_URL_TYPE:
            raise ConfigError(f"{where}: type {type_!r} needs a 'url', e.g. sqlite:///jobs.db")
        return _BY_NAME[type_], options
    if not isinstance(url, str):
        raise ConfigError(f"{where}: 'url' must be a string, got {type(url).__name__}")
    try:
        url_type, url_options = parse_jobstore_url(url)
    except ValueError as exc:
        # Not shown unless it looks like a URL: a value with no scheme might be a bare password.
        shown = f" {redact_url(url)!r}" if "://" in url else ""
        raise ConfigError(f"{where}: bad job store URL{shown}: {exc}") from None
    backend = _BY_NAME[url_type]
    if type_ is not None and _BY_NAME.get(type_, _BY_URL_TYPE.get(type_)) is not backend:
        raise ConfigError(
            f"{where}: type {type_!r} does not match {redact_url(url)!r} ({url_type})"
        )
    return backend, {**url_options, **options}


def _missing_driver(where: str, backend: Backend, exc: ImportError) -> str:
    missing = exc.name or getattr(exc.__cause__, "name", None) or backend.extra or backend.name
    module = missing.split(".")[0]
    package, extra = backend.drivers.get(module, (module, backend.extra))
    how = f"pip install 'scheduler-service[{extra}]'" if extra else f"pip install {package}"
    return f"{where}: the {backend.name} job store needs the {package!r} package: {how}"


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _backend_of(store: Any) -> Backend | None:
    """Return the backend of ``store``'s class (or of a class it derives from), or None."""
    for cls in type(store).__mro__:
        backend = _BY_TARGET.get(f"{cls.__module__}:{cls.__qualname__}")
        if backend is not None:
            return backend
    return None


def _origin_of(store: Any) -> _Origin:
    return getattr(store, "_ss_origin", None) or _Origin()


def _alias_of(store: Any) -> str:
    return str(store._alias or _origin_of(store).alias or "?")
