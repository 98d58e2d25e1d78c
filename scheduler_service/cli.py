"""The scheduler-service console script: run, check-config, jobs, hash-password, new-token."""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import secrets
import signal
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import click
from flask import Flask
from werkzeug.security import generate_password_hash

from . import create_app
from .errors import ConfigError
from .scheduler.upstream import store_alias


def _fail(message: str) -> NoReturn:
    """Print one line and exit 2."""
    click.echo(f"scheduler-service: {message}", err=True)
    sys.exit(2)


def _app_or_exit(
    overrides: Mapping[str, Any] | None = None, *, start: bool | None = None, check: bool = False
) -> Flask:
    """Build the app; on bad configuration print one line naming the key and exit 2."""
    try:
        return create_app(overrides, start=start, check=check)
    except ConfigError as exc:
        _fail(f"configuration error: {exc.message}")


@click.group()
@click.version_option(package_name="scheduler-service", prog_name="scheduler-service")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def main(log_level: str) -> None:
    """Job-scheduling control plane: Flask-APScheduler's REST API, safe and observable."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Waitress warns of every request queued behind busy threads: under a flood (of refused
    # logins, say) a line per request, thousands a second.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Request threads of the waitress server (keep it above twice "
    "SCHEDULER_PASSWORD_CHECKS: password checks hold at most that many).",
)
def run(host: str, port: int, threads: int) -> None:
    """Serve the API with waitress (one process) and fire jobs; SIGTERM or Ctrl-C stops."""
    from . import tuning
    from .control.startup import start_scheduler
    from .server import create_server

    tuning.one_malloc_arena()  # before any thread starts

    app = _app_or_exit(start=False)
    try:  # bind first: a busy port must not leave a scheduler firing in a dying process
        server = create_server(app, host=host, port=port, threads=threads)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    if app.config["SCHEDULER_AUTOSTART"]:
        try:
            start_scheduler(app)
        except ConfigError as exc:
            _fail(f"configuration error: {exc.message}")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    tuning.freeze_startup_objects()
    prefix = app.config["SCHEDULER_API_PREFIX"]
    base = f"http://{host}:{port}"
    click.echo(
        f"scheduler-service listening on {base}  (job API: {base}{prefix}, health: {base}/healthz)",
        err=True,
    )
    click.echo(
        f"log in with HTTP Basic as {app.config['SCHEDULER_ADMIN_USER']!r} "
        "(or a user of SCHEDULER_USERS); Ctrl-C stops",
        err=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        extension = app.extensions["scheduler_service"]
        if extension.running:
            extension.shutdown(wait=False)  # running jobs finish; process workers then exit
        click.echo("scheduler-service stopped", err=True)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    # systemd, Docker and Kubernetes stop services with SIGTERM: leave as Ctrl-C does.
    raise KeyboardInterrupt


@main.command("check-config")
def check_config() -> None:
    """Validate settings and declared jobs and reach every job store; change nothing.

    Nothing is written: no folder, file, password or migration. A SQLite file that does not
    exist yet is reported as one the service will create.
    """
    from .control import get_scheduler
    from .errors import ServiceUnavailable
    from .extensions import db

    app = _app_or_exit({"SCHEDULER_AUTOSTART": False}, check=True)
    with app.app_context():
        extension = get_scheduler()
        try:
            to_make = extension.probe_stores(
                timeout=app.config["SCHEDULER_STORE_TIMEOUT"], create=False
            )
        except ServiceUnavailable as exc:
            _fail(f"configuration error: {exc.message}")
        try:
            database = _database_state(app)
        finally:
            db.engine.dispose()  # leave no connection open (the command may run in-process)
    for alias, path in to_make.items():
        click.echo(f"job store {alias!r}: {path} will be created at start", err=True)
    stores = ", ".join(extension.jobstores)
    click.echo(
        f"configuration OK: job stores {stores}; {len(extension.declared)} declared job(s); "
        f"service database {database}"
    )


def _database_state(app: Flask) -> str:
    """Say whether the service database is reachable and up to date, without changing it."""
    from sqlalchemy.exc import OperationalError

    from .extensions import db
    from .migrate_lock import at_head
    from .sqlitefiles import sqlite_file

    path = sqlite_file(db.engine.url)
    if path is not None and not path.exists():
        return f"{path} will be created at start"
    try:
        with db.engine.connect() as connection:
            current = at_head(connection)
    except OperationalError as exc:
        cause = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        shown = db.engine.url.render_as_string(hide_password=True)
        _fail(f"configuration error: SCHEDULER_DATABASE_URL: cannot reach {shown}: {cause}")
    if current:
        return "up to date"
    if app.config["SCHEDULER_DATABASE_MIGRATE"]:
        return "to be migrated at start"
    return "needs migrating: run `scheduler-service upgrade-db`"


@main.command("upgrade-db")
def upgrade_db() -> None:
    """Apply the service database's migrations (start-up does it unless turned off)."""
    from . import upgrade_database

    upgrade_database(_app_or_exit({"SCHEDULER_DATABASE_MIGRATE": False}, start=False))
    click.echo("database schema is up to date", err=True)


@main.command("jobs")
def list_jobs() -> None:
    """List the jobs in every job store (fires nothing)."""
    from .control import get_job_service
    from .scheduler.serialize import iso

    app = _app_or_exit({"SCHEDULER_START_PAUSED": True})
    try:
        with app.app_context():
            jobs = get_job_service().list_jobs()
            click.echo(f"{'ID':<24} {'STORE':<10} {'NEXT RUN':<27} FUNC")
            for job in jobs:
                next_run = iso(job.next_run_time) or "paused"
                click.echo(f"{job.id:<24} {store_alias(job):<10} {next_run:<27} {job.func_ref}")
            click.echo(f"{len(jobs)} job(s)", err=True)
    finally:
        app.extensions["scheduler_service"].shutdown(wait=False)


@main.command("hash-password")
def hash_password() -> None:
    """Read a password (twice, not echoed) and print its hash for SCHEDULER_*_PASSWORD_HASH."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise click.ClickException("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise click.ClickException("empty password")
    click.echo(generate_password_hash(password))


@main.command("new-token")
@click.option("--name", required=True, help="Who or what uses the token.")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "admin"]),
    default="viewer",
    show_default=True,
)
def new_token(name: str, role: str) -> None:
    """Generate a bearer token; print it once and the entry for SCHEDULER_API_TOKENS."""
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    click.echo(f"token (shown once): {token}")
    entry = {"name": name, "role": role, "token_sha256": digest}
    click.echo(f"SCHEDULER_API_TOKENS entry: {json.dumps(entry)}")
