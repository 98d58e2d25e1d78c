"""Unbound extension singletons, attached in create_app with init_app; no app imports."""

import logging
from pathlib import Path

# Alembic announces each of its plugins at INFO when imported: noise in a service's log.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from flask_migrate import Migrate  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402

# The service's own SQL database (SCHEDULER_DATABASE_URL): run history, users, companion data.
db = SQLAlchemy()
# Its schema, by Alembic migrations kept in the package.
migrate = Migrate(directory=str(Path(__file__).parent / "migrations"))
