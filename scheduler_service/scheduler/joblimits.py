"""What the shipped job functions may touch (SPEC §9): the jobs package's ``JobLimits``,
built from settings and installed in every process that validates or runs jobs. The shipped
package is ``jobs``, or ``scheduler_service.jobs`` when another ``jobs`` package wins
(see shipped_jobs.py): the limits go to the copy that runs the shipped functions.

``create_app`` and ``create_job_app`` (process-pool children) both install them, so a
job's arguments are checked against the same limits when it is created and when it runs.
The effective values are written back into the settings, which children are built from:
the default root and the service's own files are then given to them as they were here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .. import shipped_jobs

if TYPE_CHECKING:
    from jobs import JobLimits

DEFAULT_ROOT = "job-files"  # inside the instance folder
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def install_job_limits(app: Flask) -> JobLimits:
    """Build the job limits from ``app``'s settings, install them in this process, and
    write the effective roots and refused paths back into the settings."""
    config = app.config
    instance = Path(app.instance_path)
    roots = config["SCHEDULER_JOB_FILE_ROOTS"]
    if roots is None:  # created by the first job that writes there
        roots = [str(instance / DEFAULT_ROOT)]
    refused = [*config["SCHEDULER_JOB_FILE_EXCLUDE"], *own_files(config, instance)]
    limits_class: type[JobLimits] = shipped_jobs.load().JobLimits
    limits = limits_class(
        file_roots=tuple(roots),
        protected=tuple(dict.fromkeys(refused)),
        networks=tuple(config["SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS"]),
    )
    limits.install()
    config["SCHEDULER_JOB_FILE_ROOTS"] = list(limits.file_roots)
    config["SCHEDULER_JOB_FILE_EXCLUDE"] = list(limits.protected)
    return limits


def own_files(config: Mapping[str, Any], instance: Path) -> list[str]:
    """The service's own files and folders: the instance folder (SQLite files, generated
    credentials), the settings and jobs files, and every SQLite database it uses."""
    paths = [str(instance)]
    paths += [config[k] for k in ("SCHEDULER_CONFIG_FILE", "SCHEDULER_JOBS_FILE") if config[k]]
    for url in _database_urls(config):
        database = _sqlite_file(url)
        if database:
            paths += [database + suffix for suffix in _SQLITE_COMPANIONS]
    return paths


def _database_urls(config: Mapping[str, Any]) -> Iterator[str]:
    yield config.get("SQLALCHEMY_DATABASE_URI") or ""
    yield config["SCHEDULER_JOBSTORE_URL"] or ""
    for store in dict(config["SCHEDULER_JOBSTORES"]).values():
        if isinstance(store, str):
            yield store
        elif isinstance(store, dict) and isinstance(store.get("url"), str):
            yield store["url"]


def _sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL (none for another database, or an in-memory one)."""
    if not url.startswith("sqlite"):
        return None
    try:
        database = make_url(url).database
    except (ArgumentError, ValueError):
        return None
    return database if database and database != ":memory:" else None
