"""Unbound extension singletons, attached in create_app with init_app; no app imports."""

from flask_sqlalchemy import SQLAlchemy

# The service's own SQL database (SCHEDULER_DATABASE_URL): run history, users, companion data.
db = SQLAlchemy()
