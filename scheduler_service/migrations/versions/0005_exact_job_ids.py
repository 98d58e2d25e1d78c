"""Job ids compared exactly in the run history: a binary collation for scheduler_runs.job_id on
MariaDB and MySQL, whose default collations ignore case and trailing spaces (`Nightly` and
`nightly` claimed one fire between them). PostgreSQL and SQLite compare exactly already.

Revision ID: 0005_exact_job_ids
Revises: 0004_lifecycle
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005_exact_job_ids"
down_revision = "0004_lifecycle"
branch_labels = None
depends_on = None


def _exact_collation(dialect):
    # As scheduler_service.dbtypes.exact_collation says (a migration does not import the app).
    if dialect.name not in ("mysql", "mariadb"):
        return None
    return "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"


def upgrade():
    collation = _exact_collation(op.get_bind().dialect)
    if collation is None:
        return
    # The indexes on job_id (uq_scheduler_runs_claim among them) are rebuilt with it; ids that
    # differed only by case or trailing spaces were distinct before too, so none collide.
    op.alter_column(
        "scheduler_runs",
        "job_id",
        existing_type=sa.String(length=191),
        type_=mysql.VARCHAR(191, charset="utf8mb4", collation=collation),
        existing_nullable=False,
    )


def downgrade():
    if _exact_collation(op.get_bind().dialect) is None:
        return
    # Back to the table's default collation. This fails if two claims now differ only by the
    # case of their job ids (the old collation made them one).
    op.alter_column(
        "scheduler_runs",
        "job_id",
        existing_type=mysql.VARCHAR(191, charset="utf8mb4"),
        type_=sa.String(length=191),
        existing_nullable=False,
    )
