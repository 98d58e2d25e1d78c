"""RethinkDB job stores: ``rethinkdb://[user:pass@]host:28015/database?table=jobs``.

Nothing here imports the rethinkdb driver at module load.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from .base import TIMEOUT, Backend, Options, port_of, query_options, split_url

_STORE_KEYS = {"database", "table", "client", "pickle_protocol"}
_CONNECT_KEYS = {"host", "port", "user", "password", "auth_key", "timeout", "ssl"}


def parse(url: str) -> Options:
    """Return the store options of a ``rethinkdb://`` URL.

    :raises ValueError: malformed, or an unknown option.
    """
    parts = split_url(url)
    database = unquote(parts.path.strip("/")) or "apscheduler"
    options: dict[str, Any] = {"database": database, "table": "jobs"}
    options.update(query_options(parts, known=("table",)))
    options.update(host=parts.hostname or "localhost", port=port_of(parts, 28015))
    if parts.username:
        options["user"] = unquote(parts.username)
    if parts.password is not None:
        options["password"] = unquote(parts.password)
    return options


def prepare(options: Options) -> Options:
    """Bound the connect; refuse an option now that the store would refuse only at start.

    :raises TypeError: an option neither the store nor ``r.connect()`` takes.
    """
    # The store hands unknown options to r.connect() only when it starts: refuse them now.
    unknown = sorted(set(options) - _STORE_KEYS - _CONNECT_KEYS)
    if unknown:
        raise TypeError(f"RethinkDBJobStore got an unexpected keyword argument {unknown[0]!r}")
    return {"timeout": TIMEOUT, **options}


def probe(store: Any, timeout: float) -> None:
    if store.conn is not None and not store.conn.is_open():
        raise ConnectionError("the store's connection is closed")
    # A connection of our own: the store's one is not safe to share with the scheduler thread.
    store.r.connect(**{**store.connect_args, "timeout": timeout}).close()


def holds(job_id: str) -> bool:
    """Primary keys stop at 127 bytes: a longer one is a query error, not a miss."""
    return len(job_id.encode()) <= 127 and "\x00" not in job_id


def describe(store: Any) -> dict[str, Any]:
    host, port = store.connect_args.get("host", "localhost"), store.connect_args.get("port", 28015)
    return {"host": f"{host}:{port}", "database": store.database, "table": store.table_name}


BACKEND = Backend(
    name="rethinkdb",
    target="apscheduler.jobstores.rethinkdb:RethinkDBJobStore",
    extra="rethinkdb",
    schemes=("rethinkdb",),
    parse=parse,
    prepare=prepare,
    probe=probe,
    describe=describe,
    holds=holds,
    connection_errors=(("rethinkdb.errors", "ReqlDriverError"),),
)
