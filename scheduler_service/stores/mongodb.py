"""MongoDB job stores: ``mongodb[+srv]://[user:pass@]host:27017/database?collection=jobs``.

Each store gets a client of its own, with a bounded server selection. Nothing here imports
pymongo at module load.
"""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import parse_qsl, unquote

from .base import TIMEOUT, Backend, Options, query_options, split_url

_STORE_KEYS = ("database", "collection", "pickle_protocol")


def parse(url: str) -> Options:
    """Return the store options of a MongoDB URL; pymongo gets the rest of it as ``host``.

    :raises ValueError: malformed, no host, a path that is not one database name.
    """
    parts = split_url(url, one_host=False)  # pymongo checks its host list itself
    if not parts.netloc.rpartition("@")[2]:
        raise ValueError("mongodb:// needs a host")
    database = unquote(parts.path.strip("/")) or "apscheduler"
    if "/" in database:
        raise ValueError(f"the path must be one database name, got {database!r}")
    ours = query_options(parts, known=("collection",), others_allowed=True)
    # Hand pymongo the URL minus our own option, each of its own options kept as written.
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in ours]
    client_url = url.split("?", 1)[0].split("#", 1)[0]
    if kept:
        client_url = f"{client_url if parts.path else client_url + '/'}?{'&'.join(kept)}"
    options = {"database": database, "collection": ours.get("collection", "jobs")}
    return {**options, "host": client_url}


def prepare(options: Options) -> Options:
    """Build the store's own client, with a bounded server selection, refusing bad options.

    :raises ValueError: an empty database or collection name, or an option pymongo ignores.
    """
    if options.get("client") is not None:
        return options
    own = {key: options[key] for key in _STORE_KEYS if key in options}
    for key in ("database", "collection"):
        if key in own and not own[key]:  # the store checks too, but after our client exists
            raise ValueError(f"the {key!r} option must not be empty")
    connect = {k: v for k, v in options.items() if k not in (*_STORE_KEYS, "client")}
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


def probe(store: Any, timeout: float) -> None:
    import pymongo

    with pymongo.timeout(max(timeout - 0.5, 0.1)):  # server selection re-checks every 0.5 s
        store.client.admin.command("ping")


def describe(store: Any) -> dict[str, Any]:
    servers = store.client.topology_description.server_descriptions()
    return {
        "hosts": [f"{host}:{port}" for host, port in servers],
        "database": store.collection.database.name,
        "collection": store.collection.name,
    }


BACKEND = Backend(
    name="mongodb",
    target="apscheduler.jobstores.mongodb:MongoDBJobStore",
    extra="mongodb",
    schemes=("mongodb", "mongodb+srv"),
    parse=parse,
    prepare=prepare,
    probe=probe,
    describe=describe,
    drivers={"bson": ("pymongo", "mongodb")},  # bson comes with pymongo
    connection_errors=(("pymongo.errors", "ConnectionFailure"),),
)
