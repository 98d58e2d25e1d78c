"""Fresh databases on the live SQL servers, and probes of their tables and Alembic revisions."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy.pool import NullPool

import scheduler_service
from scheduler_service.extensions import db
from tests.support.backends import service_url

MIGRATIONS = Path(scheduler_service.__file__).parent / "migrations"


@contextmanager
def fresh_database(variable: str) -> Iterator[str]:
    """Create ``scheduler_test_<random>`` on the server ``variable`` names; drop it after."""
    server = sa.make_url(service_url(variable))
    name = f"scheduler_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a test that failed before disposing its engine must not leave the database.
        force = " WITH (FORCE)" if server.get_backend_name() == "postgresql" else ""
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}{force}"))
        admin.dispose()


def dispose(app: Flask) -> None:
    """Close the app's database connections (a database in use cannot be dropped)."""
    with app.app_context():
        db.engine.dispose()


def table_names(app: Flask) -> set[str]:
    """Return the tables the app's database holds."""
    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def applied_revisions(app: Flask) -> tuple[set[str], set[str]]:
    """Return the revisions the database is at, and the heads of the migration scripts."""
    with app.app_context(), db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, set(ScriptDirectory(str(MIGRATIONS)).get_heads())


def ancestors(revisions: set[str]) -> set[str]:
    """Return ``revisions`` and every revision they build on."""
    script = ScriptDirectory(str(MIGRATIONS))
    return {rev.revision for rev in script.iterate_revisions(tuple(revisions), "base")}
