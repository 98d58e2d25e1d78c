"""The companion blueprint of SPEC §7: users, blogs and tags on Flask-SQLAlchemy.

``models`` maps the tables (created by the ``0001_blog`` migration), ``schemas`` validates
request bodies, ``service`` does the data work and raises domain errors, and each API version
is one blueprint package (``v1``) of thin views, one module per resource. This package never
imports the scheduler.
"""
