"""Unbound extension singletons, attached in create_app with init_app; no app imports."""

from pathlib import Path

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

# The service's own SQL database (SCHEDULER_DATABASE_URL): run history, users, companion data.
db = SQLAlchemy()
# Its schema, by Alembic migrations kept in the package.
migrate = Migrate(directory=str(Path(__file__).parent / "migrations"))
