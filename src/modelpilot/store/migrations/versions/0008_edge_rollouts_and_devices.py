"""edge rollouts and devices

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "edge_rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("primary_version", sa.Integer(), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("analyzed_at", sa.Float(), nullable=True),
        sa.Column("gates_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("edge_rollouts", schema=None) as batch_op:
        batch_op.create_index("ix_edge_rollouts_deployment", ["deployment", "id"], unique=False)
    op.create_table(
        "edge_devices",
        sa.Column("deployment", sa.String(length=200), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("assigned_version", sa.Integer(), nullable=True),
        sa.Column("last_sync", sa.Float(), nullable=True),
        sa.Column("uploaded", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("deployment", "device"),
    )


def downgrade() -> None:
    op.drop_table("edge_devices")
    with op.batch_alter_table("edge_rollouts", schema=None) as batch_op:
        batch_op.drop_index("ix_edge_rollouts_deployment")
    op.drop_table("edge_rollouts")
