"""ZooKeeper: kazoo's Lock recipe under <path>/leader; the lease is the session timeout.

The lock node is ephemeral: ZooKeeper deletes it when the holder's session expires, i.e.
when the holder has not been heard of for the session timeout. A suspended connection puts
the lock in doubt at once. Job changes are announced by writing <path>/changes, which every
replica watches.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from .base import Backend

log = logging.getLogger(__name__)


class ZooKeeperBackend(Backend):
    kind = "zookeeper"

    def __init__(self, *, hosts: str, path: str, name: str, replica_id: str, lease: float) -> None:
        from kazoo.client import KazooClient

        super().__init__(name=name, replica_id=replica_id, lease=lease)
        self.path = path.rstrip("/") or "/scheduler-service"
        self.lock_path = f"{self.path}/leader"
        self.changes_path = f"{self.path}/changes"
        self.client = KazooClient(hosts=hosts, timeout=lease)
        self.client.add_listener(self._state_changed)
        self._start_lock = threading.Lock()
        self._lock: Any = None

    def _state_changed(self, state: str) -> None:
        if state != "CONNECTED":  # SUSPENDED or LOST: the session may expire before we know
            self.on_lost()

    def _connected(self) -> Any:
        from kazoo.protocol.states import KeeperState

        with self._start_lock:
            if self.client.client_state == KeeperState.CLOSED:
                self.client.start(timeout=self.lease)
                granted = self.client._session_timeout / 1000  # what the server agreed to
                if granted < self.lease:
                    log.warning(
                        "ZooKeeper grants a session timeout of %.1f s, below the lease", granted
                    )
                    self.lease = granted
        return self.client

    def acquire(self, wait: float) -> bool:
        from kazoo.exceptions import LockTimeout

        client = self._connected()
        if self._lock is not None:  # a lock in doubt: never queue behind our own old node
            with contextlib.suppress(Exception):
                self._lock.release()
        self._lock = client.Lock(self.lock_path, identifier=self.replica_id)
        try:
            return bool(self._lock.acquire(blocking=True, timeout=wait))
        except LockTimeout:
            return False

    def renew(self) -> bool:
        from kazoo.protocol.states import KazooState

        lock = self._lock
        if lock is None or lock.node is None or self.client.state != KazooState.CONNECTED:
            return False
        stat = self.client.exists_async(f"{lock.path}/{lock.node}").get(timeout=self.lease / 3)
        return stat is not None and stat.owner_session_id == self.client.client_id[0]

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def leader(self) -> str | None:
        contenders = self._connected().Lock(self.lock_path).contenders()
        return contenders[0] if contenders else None

    def publish(self) -> None:
        client = self._connected()
        client.ensure_path(self.changes_path)
        client.set(self.changes_path, self.replica_id.encode())

    def listen(self, callback: Callable[[], None], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client = self._connected()
                client.ensure_path(self.changes_path)
                break
            except Exception as exc:  # not up yet: the election thread reports it
                log.debug("ZooKeeper watch not set yet: %s", exc)
                stop.wait(1.0)
        if stop.is_set():
            return

        def changed(data: Any, stat: Any) -> bool:
            if stop.is_set():
                return False  # removes the watch
            callback()
            return True

        client.DataWatch(self.changes_path)(changed)  # kazoo re-arms it after reconnects
        stop.wait()

    def close(self) -> None:
        try:
            self.client.stop()
        finally:
            self.client.close()
