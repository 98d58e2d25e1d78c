"""APScheduler's SQLAlchemy job store, safe when several processes create its table at once."""

from __future__ import annotations

import time
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from ..sqlitefiles import make_folder_on_connect

RETRIES = 2  # creates tried again after losing a race
RETRY_DELAY = 0.2  # seconds, times the attempt


class SharedSQLAlchemyJobStore(SQLAlchemyJobStore):
    """A SQLAlchemyJobStore whose start() survives another process creating the table at the
    same moment (``CREATE TABLE`` then fails with "already exists" or a unique violation).
    A SQLite file's folder is made on the first connection, not when the store is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        make_folder_on_connect(self.engine)

    def start(self, scheduler: Any, alias: str) -> None:
        """Create the table unless it exists; when that fails and the table exists now, another
        process created it: check again (after a short delay) instead of failing."""
        for attempt in range(RETRIES + 1):
            try:
                super().start(scheduler, alias)
                return
            except DBAPIError:
                if attempt == RETRIES or not self._table_exists():
                    raise
            time.sleep(RETRY_DELAY * (attempt + 1))

    def _table_exists(self) -> bool:
        try:
            return inspect(self.engine).has_table(self.jobs_t.name, schema=self.jobs_t.schema)
        except DBAPIError:
            return False
