"""SQLite files of the service database and the SQLite job stores: made on first use only.

Nothing makes a folder or a file when the app is built: ``check-config`` builds it too and
must change nothing. A SQLite database file (and its folder) appears when the engine first
connects, which a check does not do for a file that is not there yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine


def sqlite_file(url: URL) -> Path | None:
    """Return the database file a SQLite URL names; None for other databases and memory."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_folder_on_connect(engine: Engine) -> None:
    """Create a SQLite file's folder just before the engine's first connection, not before."""
    path = sqlite_file(engine.url)
    if path is None:
        return

    @event.listens_for(engine, "do_connect")
    def _make_folder(*_: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
