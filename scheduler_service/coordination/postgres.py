"""PostgreSQL: a session advisory lock on a dedicated connection; the lease is enforced by
the server's idle_session_timeout (PostgreSQL 14+).

The lock lives as long as its session. The leader's connection sets idle_session_timeout to
the lease, so a leader that stops renewing (a pause, SIGSTOP, a partition) has its session
ended by the server and the lock freed; a dead process's session ends with its socket. The
holder is named by its connection's application_name. Job changes are announced with NOTIFY
on a channel every replica LISTENs to.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable
from typing import Any

from .base import Backend

log = logging.getLogger(__name__)

LOCK_CLASS = 0x5CED  # the first key of the two-int advisory lock: "scheduler-service"
_HELD = """
SELECT EXISTS (
  SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
  AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 2 AND granted)
"""
_HOLDER = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid::bigint = %s AND l.objid::bigint = %s
  AND l.objsubid = 2 AND l.granted
"""


def libpq_url(url: str) -> str:
    """postgresql+psycopg://... (SQLAlchemy's spelling) -> postgresql://... (libpq's)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


class PostgresBackend(Backend):
    kind = "postgresql"

    def __init__(self, *, url: str, name: str, replica_id: str, lease: float) -> None:
        super().__init__(name=name, replica_id=replica_id, lease=lease)
        self.url = libpq_url(url)
        self.key = (LOCK_CLASS, zlib.crc32(name.encode()) & 0x7FFFFFFF)
        self.channel = f"{name}:changes"[:63]
        self._lock_conn: Any = None
        self._notify_conn: Any = None
        self._notify_guard = threading.Lock()

    def _connect(self, *, lease_bound: bool) -> Any:
        import psycopg

        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(2, round(self.lease / 3)),
            application_name=self.replica_id[:63],
        )
        if lease_bound:  # the server ends this session when it is idle longer than the lease
            conn.execute(f"SET idle_session_timeout = {round(self.lease * 1000)}")
        return conn

    def _lock_connection(self) -> Any:
        if self._lock_conn is None or self._lock_conn.closed:
            self._lock_conn = self._connect(lease_bound=True)
        return self._lock_conn

    def _run(self, query: str, *params: Any) -> Any:
        """One query on the lock connection; a broken connection is dropped, then raised."""
        try:
            return self._lock_connection().execute(query, params).fetchone()
        except Exception:
            self._drop_lock_connection()
            raise

    def _drop_lock_connection(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            conn.close()

    def acquire(self, wait: float) -> bool:
        return bool(self._run("SELECT pg_try_advisory_lock(%s, %s)", *self.key)[0])

    def renew(self) -> bool:
        return bool(self._run(_HELD, *self.key)[0])

    def release(self) -> None:
        if self._lock_conn is not None and not self._lock_conn.closed:
            self._lock_conn.execute("SELECT pg_advisory_unlock_all()")

    def leader(self) -> str | None:
        row = self._run(_HOLDER, *self.key)
        return None if row is None else row[0]

    def publish(self) -> None:
        with self._notify_guard:
            if self._notify_conn is None or self._notify_conn.closed:
                self._notify_conn = self._connect(lease_bound=False)
            try:
                self._notify_conn.execute("SELECT pg_notify(%s, %s)", (self.channel, "changed"))
            except Exception:
                self._notify_conn.close()
                raise

    def listen(self, callback: Callable[[], None], stop: threading.Event) -> None:
        from psycopg import sql

        while not stop.is_set():
            try:
                with self._connect(lease_bound=False) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            callback()
            except Exception as exc:  # the election thread reports the outage
                log.debug("PostgreSQL LISTEN lost: %s", exc)
                stop.wait(1.0)

    def close(self) -> None:
        self._drop_lock_connection()
        with self._notify_guard:
            if self._notify_conn is not None:
                self._notify_conn.close()
