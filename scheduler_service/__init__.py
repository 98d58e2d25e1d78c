"""scheduler-service: a job-scheduling control plane on Flask-APScheduler and APScheduler 3."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from . import shipped_jobs
from .errors import ConfigError

shipped_jobs.install()  # `import jobs` finds the shipped job functions (see shipped_jobs.py)

__all__ = ["ConfigError", "create_app", "create_job_app"]


def _database_url(settings: dict[str, Any], instance_path: Path) -> str:
    """Return the service database's SQLAlchemy URL (with its password).

    :raises ConfigError: one line naming SCHEDULER_DATABASE_URL and the cause, no password.
    """
    from .stores.sql import sql_url

    given = settings["SCHEDULER_DATABASE_URL"]
    if not given:
        return f"sqlite:///{instance_path / 'scheduler.sqlite'}"
    try:
        url = sql_url(given)
        url.get_dialect().import_dbapi()  # the driver: missing is a setting's error, not a 500
    except ValueError as exc:
        raise ConfigError(f"SCHEDULER_DATABASE_URL: {exc}") from None
    except ImportError as exc:
        package = (exc.name or "its driver").split(".")[0]
        raise ConfigError(
            f"SCHEDULER_DATABASE_URL: {url.drivername}:// needs the {package!r} package, which "
            "is not installed (postgresql:// and mysql:// use the drivers the service ships)"
        ) from None
    return url.render_as_string(hide_password=False)


def _base_app(settings: dict[str, Any]) -> Flask:
    """Build the Flask app with its settings and database; make no folder or file (a SQLite
    file and its folder appear on the first connection)."""
    from .extensions import db, migrate
    from .scheduler.joblimits import install_job_limits

    instance_path = Path(settings["SCHEDULER_INSTANCE_PATH"]).resolve()
    app = Flask(__name__, instance_path=str(instance_path))
    app.config.update(settings)
    app.config["SQLALCHEMY_DATABASE_URI"] = _database_url(settings, instance_path)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Flask-APScheduler's key order
    install_job_limits(app)  # what job functions may touch, here and in pool children
    db.init_app(app)
    migrate.init_app(app, db)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _tune_sqlite(db.engine)
    return app


def _tune_sqlite(engine: Any) -> None:
    """Let threads and process-pool children write run records to one SQLite file at once:
    write-ahead logging, and a wait of up to 30 s for a lock instead of 5."""
    from sqlalchemy import event

    from .sqlitefiles import make_folder_on_connect

    make_folder_on_connect(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA busy_timeout = 30000")
        if connection.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
            connection.execute("PRAGMA journal_mode = WAL")


def upgrade_database(app: Flask) -> None:
    """Bring the service database to the newest schema (Alembic upgrade to every head); one
    process at a time, so replicas may start at once (see migrate_lock). A database already
    there is left alone, without loading Alembic (see ARCHITECTURE.md, "Start-up tricks").

    :raises ConfigError: the database cannot be reached or refuses the change.
    """
    from sqlalchemy.exc import OperationalError

    from .extensions import db
    from .migrate_lock import MigrationLockTimeout, at_head, file_lock

    with app.app_context():
        url = db.engine.url
        try:
            # SQLite: the check too, or it meets another process's migration mid-way
            # ("database is locked"); env.py locks the other databases.
            with file_lock(url):
                with db.engine.connect() as connection:
                    if at_head(connection):
                        return
                import flask_migrate

                flask_migrate.upgrade(revision="heads")
        except OperationalError as exc:  # unreachable, or refused us: one line, no password
            cause = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        except MigrationLockTimeout as exc:  # another replica's migration did not finish
            cause = str(exc)
        else:
            return
    shown = url.render_as_string(hide_password=True)
    raise ConfigError(f"SCHEDULER_DATABASE_URL: cannot migrate {shown}: {cause}")


def create_job_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app that job functions run in inside a process-pool child: settings and the
    database only; no scheduler, no routes, no credentials.

    :raises ConfigError: a setting is invalid.
    """
    from .settings import load_settings

    return _base_app(load_settings(config))


def create_app(
    config: Mapping[str, Any] | None = None, *, start: bool | None = None, check: bool = False
) -> Flask:
    """Build the service: settings, errors, auth, database, scheduler, blueprints, then start.

    ``start`` overrides SCHEDULER_AUTOSTART for this call (the run command binds its port
    before it starts the scheduler). ``check`` builds it for inspection only (check-config):
    no file, folder or password is made, nothing is migrated or started.

    :raises ConfigError: a setting, a job store or a declared job is invalid (the message
        names the key or job).
    """
    from .api import docs, events, health, jobs, metrics, runs, scheduler
    from .api.events import init_events
    from .api.metrics import init_metrics
    from .auth import init_auth
    from .blog import v1 as blog_v1
    from .control.build import init_scheduler
    from .control.startup import start_scheduler
    from .devadmin import ensure_dev_admin
    from .errors import register_error_handlers
    from .guards import init_guards
    from .sessions import init_sessions
    from .settings import load_settings
    from .ui import init_ui

    app = _base_app(load_settings(config))
    instance_path = Path(app.instance_path)

    generated = ensure_dev_admin(app.config, instance_path, persist=not check)
    if generated:
        print(generated, file=sys.stderr)  # shown once, never logged
    init_sessions(app, persist=not check)  # the dashboard's signed cookie; its key never logged
    register_error_handlers(app)
    # Request hooks run in this order: the cheap refusals (body size, cross-site) first, then
    # the credentials (within the failed-login limits).
    init_guards(app)
    init_auth(app)
    extension = init_scheduler(app, job_app=create_job_app)
    init_metrics(app, extension)
    init_events(app, extension)

    # Every route of the service: the probes, the metrics and the docs at the root, the blog
    # under /blog/v1, the scheduler API under its prefix (Flask-APScheduler's /scheduler), the
    # dashboard under /ui (and / redirects there).
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(blog_v1.bp)
    if app.config["SCHEDULER_API_ENABLED"]:
        prefix = app.config["SCHEDULER_API_PREFIX"]
        app.register_blueprint(scheduler.bp, url_prefix=prefix)
        app.register_blueprint(jobs.bp, url_prefix=prefix)
        app.register_blueprint(runs.bp, url_prefix=prefix)
        app.register_blueprint(events.bp, url_prefix=prefix)
    init_ui(app)

    # Everything is validated by now: only then touch the database, then start.
    if check:
        return app
    if app.config["SCHEDULER_DATABASE_MIGRATE"]:
        upgrade_database(app)
    if app.config["SCHEDULER_AUTOSTART"] if start is None else start:
        start_scheduler(app)
    return app
