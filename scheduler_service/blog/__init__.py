"""The companion blueprint of SPEC §7: users, blogs and tags on Flask-SQLAlchemy.

``models`` maps the tables (created by the ``0001_blog`` migration), ``schemas`` validates
request bodies, ``service`` does the data work and raises domain errors, and each API version
is one blueprint package (``v1``) of thin views, one module per resource. This package never
imports the scheduler.

The views reach ``service`` through ``load_service()``: it and the models load on the first blog
request, not at start-up, which needs only the routes and the schemas that document them.
"""

from __future__ import annotations

from types import ModuleType


def load_service() -> ModuleType:
    """Return the ``service`` module, importing it (and with it the models) on first use."""
    from . import service

    return service
