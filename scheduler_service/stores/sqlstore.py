"""APScheduler's SQLAlchemy job store, safe when several processes create its table at once,
and with job ids compared exactly on MariaDB and MySQL."""

from __future__ import annotations

import logging
import time
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from ..dbtypes import ExactString, exact_collation
from ..sqlitefiles import make_folder_on_connect

log = logging.getLogger(__name__)

RETRIES = 2  # creates tried again after losing a race
RETRY_DELAY = 0.2  # seconds, times the attempt
ID_LENGTH = 191  # APScheduler's Unicode(191)


class SharedSQLAlchemyJobStore(SQLAlchemyJobStore):
    """A SQLAlchemyJobStore whose start() survives another process creating the table at the
    same moment (``CREATE TABLE`` then fails with "already exists" or a unique violation), and
    whose ``id`` column tells ``Nightly`` from ``nightly`` on MariaDB and MySQL (their default
    collations ignore case and trailing spaces: two jobs would share one row). A SQLite file's
    folder is made on the first connection, not when the store is built."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.jobs_t.c.id.type = ExactString(ID_LENGTH)  # new tables get the exact collation
        make_folder_on_connect(self.engine)

    def start(self, scheduler: Any, alias: str) -> None:
        """Create the table unless it exists; when that fails and the table exists now, another
        process created it: check again (after a short delay) instead of failing. Then give an
        existing table's ``id`` column the exact collation."""
        for attempt in range(RETRIES + 1):
            try:
                super().start(scheduler, alias)
                break
            except DBAPIError:
                if attempt == RETRIES or not self._table_exists():
                    raise
            time.sleep(RETRY_DELAY * (attempt + 1))
        self._make_ids_exact()

    def _table_exists(self) -> bool:
        try:
            return inspect(self.engine).has_table(self.jobs_t.name, schema=self.jobs_t.schema)
        except DBAPIError:
            return False

    def _make_ids_exact(self) -> None:
        """Alter a table created before (by this service or by Flask-APScheduler) whose ``id``
        column has a collation that is not exact. Idempotent: replicas may do it at once."""
        collation = exact_collation(self.engine.dialect)
        if collation is None:
            return
        with self.engine.begin() as connection:
            current = connection.execute(
                text(
                    "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA"
                    " = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"
                    " AND COLUMN_NAME = 'id'"
                ),
                {"schema": self.jobs_t.schema, "table": self.jobs_t.name},
            ).scalar()
            if current in (None, collation):
                return
            log.warning(
                "job store table %s: giving its id column the collation %s (was %s)",
                self.jobs_t.fullname,
                collation,
                current,
            )
            table = self.engine.dialect.identifier_preparer.format_table(self.jobs_t)
            connection.exec_driver_sql(
                f"ALTER TABLE {table} MODIFY id VARCHAR({ID_LENGTH})"
                f" CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL"
            )
