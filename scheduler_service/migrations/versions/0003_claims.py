"""Exactly-once fires: a claim per (job, scheduled time), and the skipped_duplicate state.

Revision ID: 0003_claims
Revises: 0002_runs
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_claims"
down_revision = "0002_runs"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("scheduler_runs", sa.Column("claim", sa.Boolean(), nullable=True))
    op.create_index(
        "uq_scheduler_runs_claim",
        "scheduler_runs",
        ["job_id", "scheduled_run_time", "claim"],
        unique=True,
    )
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce VARCHAR lengths
        op.alter_column(
            "scheduler_runs",
            "state",
            existing_type=sa.String(length=16),
            type_=sa.String(length=24),
            existing_nullable=False,
        )


def downgrade():
    op.execute("UPDATE scheduler_runs SET state = 'skipped' WHERE state = 'skipped_duplicate'")
    op.drop_index("uq_scheduler_runs_claim", table_name="scheduler_runs")
    with op.batch_alter_table("scheduler_runs") as batch:
        batch.drop_column("claim")
        batch.alter_column(
            "state",
            existing_type=sa.String(length=24),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
