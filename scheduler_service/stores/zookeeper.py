"""ZooKeeper job stores: ``zookeeper://[user:pass@]host:2181[,host2:2181]/path/to/jobs``.

Each store gets a kazoo client of its own whose start is bounded. Nothing here imports kazoo
at module load.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any
from urllib.parse import unquote

from .base import TIMEOUT, Backend, Options, split_url

_STORE_KEYS = ("path", "close_connection_on_exit", "pickle_protocol")
# host, [v6:addr] or name, then an optional :port
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]/]+)(:\d+)?$")
# Characters ZooKeeper refuses in a znode name (PathUtils.validatePath), as Java sees them:
# a character outside the BMP is a surrogate pair, in the refused \ud800-\uf8ff.
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\U0010ffff/]")


def parse(url: str) -> Options:
    """Return the store options of a ``zookeeper://`` URL (a userinfo is digest auth).

    :raises ValueError: malformed, no host, a bad host[:port], any query option.
    """
    parts = split_url(url, one_host=False)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise ValueError("zookeeper:// needs at least one host[:port]")
    for host in hosts.split(","):
        if not _HOST.match(host):
            raise ValueError(f"not a host[:port]: {host!r}")
    if parts.query:
        raise ValueError("zookeeper:// takes no query options")
    options: dict[str, Any] = {"hosts": hosts, "path": parts.path.rstrip("/") or "/apscheduler"}
    if at:  # digest auth, as `zkCli addauth digest user:password`
        user, _, password = userinfo.partition(":")
        options["auth_data"] = [("digest", f"{unquote(user)}:{unquote(password)}")]
    return options


@cache
def _bounded_kazoo_client() -> type:
    from kazoo.client import KazooClient

    class BoundedKazooClient(KazooClient):
        """Give up after TIMEOUT s: ZooKeeperJobStore.start() calls start() bare (15 s)."""

        def start(self, timeout: float = TIMEOUT) -> None:
            super().start(timeout=timeout)

    return BoundedKazooClient


def prepare(options: Options) -> Options:
    """Build the store's own client, its session and start bounded; stop it with the store."""
    if options.get("client") is not None:
        return options
    own = {key: options[key] for key in _STORE_KEYS if key in options}
    connect = {k: v for k, v in options.items() if k not in (*_STORE_KEYS, "client")}
    connect.setdefault("timeout", TIMEOUT)
    # The client is ours, so the store stops it on shutdown (its default leaves it running).
    own.setdefault("close_connection_on_exit", True)
    return {**own, "client": _bounded_kazoo_client()(**connect)}


def probe(store: Any, timeout: float) -> None:
    from kazoo.protocol.states import KeeperState

    client = store.client
    if client.connected:
        return
    if client.client_state != KeeperState.CLOSED:  # started: kazoo is reconnecting by itself
        raise ConnectionError(f"session {client.state.lower()}, reconnecting")
    client.start(timeout=timeout)  # never started (or stopped): connect now, as store.start would


def holds(job_id: str) -> bool:
    """A znode name: not "." or "..", none of the refused characters (a bad path is an
    error from the server, not a miss)."""
    return job_id not in (".", "..") and not _REFUSED.search(job_id)


def describe(store: Any) -> dict[str, Any]:
    hosts = ",".join(f"{host}:{port}" for host, port in store.client.hosts)
    return {"hosts": hosts, "path": store.path}


BACKEND = Backend(
    name="zookeeper",
    target="apscheduler.jobstores.zookeeper:ZooKeeperJobStore",
    extra="zookeeper",
    schemes=("zookeeper",),
    parse=parse,
    prepare=prepare,
    probe=probe,
    describe=describe,
    holds=holds,
    connection_errors=(
        ("kazoo.exceptions", "ConnectionLoss"),
        ("kazoo.exceptions", "SessionExpiredError"),
        ("kazoo.handlers.threading", "KazooTimeoutError"),
    ),
)
