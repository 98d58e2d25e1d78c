"""Coordination of several replicas: which one fires jobs (SPEC §8).

``SCHEDULER_COORDINATION`` picks the backend by URL: ``none`` (one process fires, the
default), ``zookeeper://host:2181[,host2:2181]/path``, ``redis://...`` / ``rediss://...`` or
``postgresql://...``.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from .base import Backend, LeaderElection

__all__ = ["Backend", "LeaderElection", "build_backend", "coordination_kind", "default_replica_id"]

_KINDS = {
    "zookeeper": "zookeeper",
    "redis": "redis",
    "rediss": "redis",
    "postgres": "postgresql",
    "postgresql": "postgresql",
}
# backend -> (its driver, the pip extra that installs it)
_DRIVERS = {
    "zookeeper": ("kazoo", "zookeeper"),
    "redis": ("redis", "redis"),
    "postgresql": ("psycopg", "postgres"),
}


def default_replica_id() -> str:
    """host:pid:random, unique even across containers that reuse pid 1."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def coordination_kind(url: str | None) -> str | None:
    """The backend a SCHEDULER_COORDINATION value names, None for "none".

    :raises ConfigError: the value names no known backend.
    """
    if url is None or url.strip().lower() in ("", "none"):
        return None
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    kind = _KINDS.get(scheme)
    if kind is None:
        raise ConfigError(
            "SCHEDULER_COORDINATION: expected none, zookeeper://, redis://, rediss:// or "
            f"postgresql://, got {scheme + '://' if scheme else repr(url)}"
        )
    return kind


def build_backend(url: str | None, *, name: str, replica_id: str, lease: float) -> Backend | None:
    """The coordination backend for SCHEDULER_COORDINATION, or None for a single process.

    :raises ConfigError: an unknown backend, or its driver is not installed.
    """
    kind = coordination_kind(url)
    if kind is None:
        return None
    assert url is not None
    module, extra = _DRIVERS[kind]
    try:
        __import__(module)
    except ImportError:
        raise ConfigError(
            f"SCHEDULER_COORDINATION: {kind} needs the {module} driver: "
            f"pip install 'scheduler-service[{extra}]'"
        ) from None
    common: dict[str, Any] = {"name": name, "replica_id": replica_id, "lease": lease}
    if kind == "zookeeper":
        from .zookeeper import ZooKeeperBackend

        parts = urlsplit(url)
        path = parts.path if parts.path not in ("", "/") else f"/{name}"
        return ZooKeeperBackend(hosts=parts.netloc, path=path, **common)
    if kind == "redis":
        from .redis_lock import RedisBackend

        return RedisBackend(url=url, **common)
    from .postgres import PostgresBackend

    return PostgresBackend(url=url, **common)
