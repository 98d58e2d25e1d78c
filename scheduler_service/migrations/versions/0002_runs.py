"""Run history: the scheduler_runs table.

Revision ID: 0002_runs
Revises: 0001_blog
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Aware UTC on PostgreSQL; naive UTC with microseconds on MariaDB (see dbtypes.UTCDateTime).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0002_runs"
down_revision = "0001_blog"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "scheduler_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=191), nullable=False),
        sa.Column("job_name", sa.String(length=200), nullable=True),
        sa.Column("func", sa.String(length=200), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("executor", sa.String(length=64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("scheduled_run_time", TIMESTAMP, nullable=False),
        sa.Column("submitted_at", TIMESTAMP, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("result_truncated", sa.Boolean(), nullable=False),
        sa.Column("log", sa.Text(), nullable=True),
        sa.Column("log_truncated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_runs"),
    )
    op.create_index("ix_scheduler_runs_job_id", "scheduler_runs", ["job_id"])
    op.create_index("ix_scheduler_runs_state", "scheduler_runs", ["state"])
    op.create_index(
        "ix_scheduler_runs_scheduled_run_time", "scheduler_runs", ["scheduled_run_time"]
    )


def downgrade():
    op.drop_table("scheduler_runs")
