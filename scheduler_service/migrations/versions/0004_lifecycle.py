"""One run lifecycle: boots, deciding replicas, the fire ledger, durable retries, heartbeats
and the cluster-wide pause flag.

Revision ID: 0004_lifecycle
Revises: 0003_claims
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# As scheduler_service.dbtypes.UTCDateTime stores it (a migration does not import the app).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0004_lifecycle"
down_revision = "0003_claims"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("scheduler_runs") as batch:
        batch.add_column(sa.Column("boot", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("replica", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("coalesced_into", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("not_before", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("no_leader", sa.Boolean(), nullable=True))
    op.create_table(
        "scheduler_replicas",
        sa.Column("boot", sa.String(length=32), primary_key=True),
        sa.Column("replica_id", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("machine", sa.String(length=128), nullable=False),
        sa.Column("pid_start", sa.String(length=32), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("last_heartbeat", TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_scheduler_replicas_last_heartbeat", "scheduler_replicas", ["last_heartbeat"]
    )
    op.create_table(
        "scheduler_cluster",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=True),
    )


def downgrade():
    op.drop_table("scheduler_cluster")
    op.drop_index("ix_scheduler_replicas_last_heartbeat", table_name="scheduler_replicas")
    op.drop_table("scheduler_replicas")
    op.execute("DELETE FROM scheduler_runs WHERE state IN ('pending', 'coalesced')")
    op.execute("UPDATE scheduler_runs SET state = 'abandoned' WHERE state = 'unknown'")
    with op.batch_alter_table("scheduler_runs") as batch:
        for column in ("no_leader", "not_before", "coalesced_into", "replica", "boot"):
            batch.drop_column(column)
