"""Unbound extension singletons, attached in create_app with init_app; no app imports."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

# Alembic announces each of its plugins at INFO when imported: noise in a service's log.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class DeferredMigrate:
    """Flask-Migrate's ``Migrate``, imported when first used: importing Flask-Migrate imports
    all of Alembic, which a start on a database already at the newest schema never needs (see
    ``upgrade_database``; what it saves, measured: ARCHITECTURE.md, "Start-up tricks").

    ``init_app`` registers what Flask-Migrate's does, ``app.extensions["migrate"]`` and the
    ``flask db`` commands, as stand-ins that load the real ones on first use.
    """

    def __init__(self, *, directory: Path) -> None:
        self.directory = str(directory)

    def init_app(self, app: Flask, db: SQLAlchemy) -> None:
        app.extensions["migrate"] = _PendingMigrate(app, db, self.directory)
        app.cli.add_command(_db_commands)


class _PendingMigrate:
    """``app.extensions["migrate"]`` until an attribute is read: then Flask-Migrate's own
    config, which its ``init_app`` puts in this one's place."""

    def __init__(self, app: Flask, db: SQLAlchemy, directory: str) -> None:
        self._app, self._db, self._directory = app, db, directory

    def __getattr__(self, name: str) -> Any:
        return getattr(load_migrate(self._app), name)


def load_migrate(app: Flask) -> Any:
    """Return ``app.extensions["migrate"]`` as Flask-Migrate makes it, importing it now."""
    config = app.extensions["migrate"]
    if isinstance(config, _PendingMigrate):
        from flask_migrate import Migrate

        Migrate(app, config._db, directory=config._directory)
        config = app.extensions["migrate"]
    return config


@click.command(
    "db",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def _db_commands(ctx: click.Context) -> None:
    """Perform database migrations (Flask-Migrate's commands)."""
    from flask_migrate.cli import db as commands

    with commands.make_context(ctx.info_name, ctx.args, parent=ctx.parent) as sub:
        commands.invoke(sub)


# The service's own SQL database (SCHEDULER_DATABASE_URL): run history, users, companion data.
db = SQLAlchemy()
# Its schema, by Alembic migrations kept in the package.
migrate = DeferredMigrate(directory=Path(__file__).parent / "migrations")
