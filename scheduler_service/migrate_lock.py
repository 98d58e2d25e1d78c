"""Migrations at start-up: none when the database is already at the head revisions, else one
at a time across processes (replicas that start at once on a fresh database must not all find
"no version" and all create the tables).

``at_head`` compares the ``alembic_version`` table with the heads of the migration scripts, read
from their source: a start on an up-to-date database (the usual one) takes no lock and does not
load Alembic (what that saves, measured: ARCHITECTURE.md, "Start-up tricks"). In any other state
the process takes the lock and runs Alembic, which reads the version again under it. A
migration still running elsewhere never looks finished: the version row changes in the
migration's own transaction (PostgreSQL, SQLite), or after the DDL it stamps (MySQL, one
migration at a time).

- PostgreSQL: a transaction-level advisory lock, taken inside the migration transaction (DDL is
  transactional there): the next process reads the current revision once the first commits.
- MySQL/MariaDB: a named session lock (GET_LOCK) held around the migrations, each of which
  commits on its own (DDL is not transactional there).
- SQLite: an exclusive flock on ``<database file>.migrate.lock``, held by upgrade_database.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

VERSIONS = Path(__file__).parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's default; env.py does not change it

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
    os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released on close, or when the process dies
        yield


@functools.cache
def script_heads(versions: Path = VERSIONS) -> frozenset[str] | None:
    """Return the head revisions of the migration scripts in ``versions``, as Alembic's
    ``ScriptDirectory.get_heads()`` would, from the scripts' ``revision`` and ``down_revision``
    assignments (parsed, not imported: importing them imports Alembic); None if a script does
    not spell them as literals (then Alembic has to read it)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        if path.name.startswith(("__init__", ".#")):  # files Alembic skips too
            continue
        values = _literal_assignments(path.read_text())
        revision, down = values.get("revision"), values.get("down_revision", ...)
        if isinstance(down, str):
            down = (down,)
        if not isinstance(revision, str) or not isinstance(down, tuple | list | None):
            return None
        revisions.add(revision)
        parents.update(down or ())
    return frozenset(revisions - parents)


def _literal_assignments(source: str) -> dict[str, Any]:
    """Return the module-level ``name = <literal>`` (or ``name: T = <literal>``) of ``source``."""
    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            with contextlib.suppress(ValueError):
                values[target.id] = ast.literal_eval(value)
    return values


def at_head(connection: Connection) -> bool:
    """Whether the database stands at the scripts' head revisions: nothing to migrate.

    :raises sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    from sqlalchemy import column, inspect, select, table
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    versions = table(VERSION_TABLE, column("version_num"))
    try:
        if not inspect(connection).has_table(VERSION_TABLE):
            return False
        current = set(connection.execute(select(versions.c.version_num)).scalars())
    except OperationalError:
        raise
    except SQLAlchemyError:  # e.g. no right to read it: let Alembic meet and report it
        return False
    heads = script_heads()
    return bool(heads) and current == heads
