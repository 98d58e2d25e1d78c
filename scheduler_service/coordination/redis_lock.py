"""Redis: redis-py's Lock on <name>:leader, a key with a TTL of the lease that the leader
renews; job changes are announced on the pub/sub channel <name>:changes.

The key's value is the holder's replica id (the lock token), so any replica can tell who
leads. Single Redis server semantics: with a replicated Redis, a failover can lose the key.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from .base import Backend

log = logging.getLogger(__name__)


class RedisBackend(Backend):
    kind = "redis"

    def __init__(self, *, url: str, name: str, replica_id: str, lease: float) -> None:
        import redis

        super().__init__(name=name, replica_id=replica_id, lease=lease)
        self.key = f"{name}:leader"
        self.channel = f"{name}:changes"
        self.client = redis.Redis.from_url(
            url, socket_timeout=lease / 3, socket_connect_timeout=lease / 3
        )
        self._lock: Any = None

    def acquire(self, wait: float) -> bool:
        lock = self.client.lock(self.key, timeout=self.lease, thread_local=False)
        if lock.acquire(blocking=False, token=self.replica_id):
            self._lock = lock
            return True
        return False

    def renew(self) -> bool:
        from redis.exceptions import LockNotOwnedError

        if self._lock is None:
            return False
        try:
            self._lock.reacquire()  # PEXPIRE only while the key still holds our token
        except LockNotOwnedError:
            self._lock = None
            return False
        return True

    def release(self) -> None:
        from redis.exceptions import LockError

        lock, self._lock = self._lock, None
        if lock is not None:
            with contextlib.suppress(LockError):  # expired, or another replica holds it now
                lock.release()

    def leader(self) -> str | None:
        value = self.client.get(self.key)
        if isinstance(value, bytes):
            return value.decode(errors="replace")
        return value

    def publish(self) -> None:
        self.client.publish(self.channel, self.replica_id)

    def listen(self, callback: Callable[[], None], stop: threading.Event) -> None:
        while not stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                while not stop.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        callback()
            except Exception as exc:  # the election thread reports the outage
                log.debug("Redis subscription lost: %s", exc)
                stop.wait(1.0)
            finally:
                pubsub.close()

    def close(self) -> None:
        self.client.close()
