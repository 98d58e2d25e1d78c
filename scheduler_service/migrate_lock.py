"""One migration at a time across processes: replicas that start at once on a fresh database
must not all find "no version" and all create the tables.

- PostgreSQL: a transaction-level advisory lock, taken inside the migration transaction (DDL is
  transactional there): the next process reads the current revision once the first commits.
- MySQL/MariaDB: a named session lock (GET_LOCK) held around the migrations, each of which
  commits on its own (DDL is not transactional there).
- SQLite: an exclusive flock on ``<database file>.migrate.lock``, held by upgrade_database.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

PG_LOCK_KEY = 0x7363_6865_646D_6967  # b"schedmig": a fixed 64-bit key
MYSQL_LOCK_NAME = "scheduler_service_migrate"
MYSQL_LOCK_TIMEOUT = 120  # seconds to wait for another process's migration


class MigrationLockTimeout(TimeoutError):
    """Another process held the migration lock for longer than we wait."""


@contextlib.contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the database's migration lock on ``connection``; use it inside Alembic's
    ``begin_transaction()`` (on PostgreSQL the lock lasts until that transaction ends).

    :raises MigrationLockTimeout: MySQL/MariaDB only, after MYSQL_LOCK_TIMEOUT seconds.
    """
    from sqlalchemy import text

    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        yield
    elif dialect in ("mysql", "mariadb"):
        lock = {"name": MYSQL_LOCK_NAME, "timeout": MYSQL_LOCK_TIMEOUT}
        if connection.execute(text("SELECT GET_LOCK(:name, :timeout)"), lock).scalar() != 1:
            raise MigrationLockTimeout(
                f"no migration lock ({MYSQL_LOCK_NAME!r}) within {MYSQL_LOCK_TIMEOUT} s: "
                "is another process still migrating?"
            )
        try:
            yield
        finally:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_LOCK_NAME})
    else:  # SQLite: file_lock() in upgrade_database
        yield


@contextlib.contextmanager
def file_lock(url: URL) -> Iterator[None]:
    """Hold an exclusive lock on ``<database file>.migrate.lock`` for a SQLite file database;
    do nothing for any other database, or an in-memory one."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        yield
        return
    if database.startswith("file:"):  # a URI: file:path?mode=...
        if "mode=memory" in database:
            yield
            return
        database = database[len("file:") :].split("?", 1)[0]
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released on close, or when the process dies
        yield
