"""SQL job stores through SQLAlchemy (``sqlite://``, ``postgresql://``, ``mysql://``, any
SQLAlchemy URL): the class is ``sqlstore.SharedSQLAlchemyJobStore``.

Paging uses ORDER BY/LIMIT on the indexed next_run_time; a pass is written back in one
transaction (an executemany UPDATE and a DELETE ... IN). Nothing here imports SQLAlchemy or a
driver at module load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import TIMEOUT, Backend, Options, StorePager, job_state

if TYPE_CHECKING:
    from apscheduler.job import Job
    from sqlalchemy.engine import URL

# A bare dialect gets the driver we ship (pyproject extras `postgres` and `mysql`).
_SQL_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
_CONNECT_TIMEOUT_DRIVERS = {"psycopg", "psycopg2", "pymysql", "mysqldb"}
CHUNK = 500  # ids in one DELETE ... IN (...)


class UnknownDatabase(ValueError):
    """The URL's scheme names no SQLAlchemy dialect."""


def sql_url(url: str) -> URL:
    """Return the SQLAlchemy URL ``url`` names, a bare dialect given the driver we ship
    (``postgres://`` and ``postgresql://`` -> ``postgresql+psycopg://``).

    :raises ValueError: the URL is malformed or names no SQLAlchemy dialect (no password shown).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError("not a URL: expected dialect://..., e.g. postgresql://user@host/db")
    dialect, plus, driver = scheme.lower().partition("+")
    dialect = "postgresql" if dialect == "postgres" else dialect
    name = f"{dialect}+{driver}" if plus else _SQL_DRIVERS.get(dialect, dialect)
    try:
        sa_url = make_url(f"{name}://{rest}")
        sa_url.get_dialect()  # loads the dialect class only; the DB driver is imported later
    except NoSuchModuleError:
        raise UnknownDatabase(
            f"unknown database {scheme!r}: use sqlite://, postgresql://, mysql:// or "
            "another SQLAlchemy URL"
        ) from None
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"not a valid SQLAlchemy URL ({type(exc).__name__})") from None
    return sa_url


def parse(url: str) -> Options:
    """Return the store options of a SQLAlchemy URL (``?tablename=`` is ours, not the driver's).

    :raises ValueError: see ``sql_url``; a ``tablename`` given twice or empty.
    """
    sa_url = sql_url(url)
    options: dict[str, Any] = {}
    tablename = sa_url.query.get("tablename")
    if tablename is not None:
        if not isinstance(tablename, str) or not tablename:
            raise ValueError("tablename must be given once and not be empty")
        options["tablename"] = tablename
        sa_url = sa_url.difference_update_query(["tablename"])
    options["url"] = sa_url.render_as_string(hide_password=False)
    return options


def prepare(options: Options) -> Options:
    """Ping pooled connections before use; bound the connect of the drivers we know."""
    if not isinstance(options.get("url"), str):
        return options  # an `engine` instead, or the store's own "need url or engine" error
    from sqlalchemy.engine import make_url

    url = make_url(options["url"])
    if url.get_backend_name() == "sqlite":
        return options  # its folder is made on first connect (sqlstore), not when built
    engine_options = {"pool_pre_ping": True, **(options.get("engine_options") or {})}
    connect_args = dict(engine_options.get("connect_args") or {})
    if url.get_driver_name() in _CONNECT_TIMEOUT_DRIVERS and "connect_timeout" not in url.query:
        connect_args.setdefault("connect_timeout", int(TIMEOUT))
    return {**options, "engine_options": {**engine_options, "connect_args": connect_args}}


def missing_file(store: Any) -> Path | None:
    """Return the file of a SQLite job store that does not exist yet (a probe would make it)."""
    from ..sqlitefiles import sqlite_file

    path = sqlite_file(store.engine.url)
    return path if path is not None and not path.exists() else None


def probe(store: Any, timeout: float) -> None:
    with store.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")


def holds(job_id: str) -> bool:
    """PostgreSQL text cannot hold a NUL (psycopg raises on the query): no job has one."""
    return "\x00" not in job_id


def describe(store: Any) -> dict[str, Any]:
    url = store.engine.url.render_as_string(hide_password=True)
    return {"url": url, "table": store.jobs_t.fullname}


def pager(store: Any) -> StorePager:
    """Count in one query and page with ORDER BY/LIMIT: only the page is unpickled."""
    from sqlalchemy import func, select

    table = store.jobs_t

    def where(active: bool) -> Any:
        return table.c.next_run_time.isnot(None) if active else table.c.next_run_time.is_(None)

    def counts() -> tuple[int, int]:
        query = select(func.count(), func.count(table.c.next_run_time)).select_from(table)
        with store.engine.begin() as connection:
            every, scheduled = connection.execute(query).one()
        return scheduled, every - scheduled

    def page(active: bool, offset: int, limit: int) -> list[Job]:
        order = (table.c.next_run_time, table.c.id) if active else (table.c.id,)
        query = (
            select(table.c.job_state)
            .where(where(active))
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        )
        with store.engine.begin() as connection:
            states = connection.execute(query).scalars().all()
        return [store._reconstitute_job(state) for state in states]

    return StorePager(counts, page)


def write_back(store: Any, updated: Sequence[Job], removed: Sequence[str]) -> None:
    """One transaction: an executemany UPDATE (rows gone meanwhile stay gone), DELETE ... IN."""
    from apscheduler.util import datetime_to_utc_timestamp
    from sqlalchemy import bindparam

    table = store.jobs_t
    with store.engine.begin() as connection:
        if updated:
            statement = (
                table.update()
                .where(table.c.id == bindparam("job_id"))
                .values(next_run_time=bindparam("run_at"), job_state=bindparam("state"))
            )
            connection.execute(
                statement,
                [
                    {
                        "job_id": job.id,
                        "run_at": datetime_to_utc_timestamp(job.next_run_time),
                        "state": job_state(store, job),
                    }
                    for job in updated
                ],
            )
        for start in range(0, len(removed), CHUNK):
            connection.execute(table.delete().where(table.c.id.in_(removed[start : start + CHUNK])))


BACKEND = Backend(
    name="sqlalchemy",
    target="scheduler_service.stores.sqlstore:SharedSQLAlchemyJobStore",  # replicas share tables
    extra=None,  # SQLAlchemy is a dependency; the SQL drivers come with their own extras
    schemes=("sqlite", "postgresql", "mysql"),  # and any other SQLAlchemy URL (see __init__)
    parse=parse,
    prepare=prepare,
    probe=probe,
    describe=describe,
    holds=holds,
    pager=pager,
    write_back=write_back,
    missing_file=missing_file,
    url_types=("sqlite", "postgres", "postgresql", "mysql", "mariadb"),
    also=("apscheduler.jobstores.sqlalchemy:SQLAlchemyJobStore",),  # an instance, as given
    drivers={"psycopg": ("psycopg", "postgres"), "pymysql": ("pymysql", "mysql")},
    connection_errors=(
        ("sqlalchemy.exc", "OperationalError"),
        ("sqlalchemy.exc", "InterfaceError"),
    ),
)
