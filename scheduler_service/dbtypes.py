"""Column types shared by the service's tables, and the count of rows a statement changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import CursorResult, Dialect, Result


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    PostgreSQL keeps the offset (timestamptz); SQLite and MariaDB store naive UTC, with
    microseconds (MariaDB's DATETIME would otherwise drop them).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def exact_collation(dialect: Dialect) -> str | None:
    """Return the collation that compares job ids byte for byte on MariaDB or MySQL (None on
    other databases: PostgreSQL and SQLite compare strings exactly already).

    Their default collations ignore case and trailing spaces, so ``Nightly``, ``nightly`` and
    ``nightly `` would be one key. MariaDB's ``utf8mb4_bin`` still pads (ignores trailing
    spaces); ``utf8mb4_nopad_bin`` does not. MySQL's ``utf8mb4_bin`` pads too; it tells case
    apart, and the job id alphabet (scheduler/specs.py) has no spaces.
    """
    if dialect.name not in ("mysql", "mariadb"):
        return None
    return "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"


class ExactString(sa.TypeDecorator[str]):
    """A string key compared exactly, case and trailing spaces included, on every database
    (a binary collation on MariaDB and MySQL; see ``exact_collation``)."""

    impl = sa.Unicode
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        collation = exact_collation(dialect)
        if collation is None:
            return dialect.type_descriptor(sa.Unicode(self.length))
        varchar = mysql.VARCHAR(self.length, charset="utf8mb4", collation=collation)
        return dialect.type_descriptor(varchar)


def changed_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed: ``Session.execute`` is typed as returning
    a ``Result``, and for those statements it is a ``CursorResult``, which counts them."""
    return cast("CursorResult[Any]", result).rowcount or 0
