"""lease epochs and traffic intervals

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "traffic_intervals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("replica", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=False),
        sa.Column("consumed_at", sa.Float(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("traffic_intervals", schema=None) as batch_op:
        batch_op.create_index("ix_traffic_intervals_consumed", ["consumed_at"], unique=False)
        batch_op.create_index("ix_traffic_intervals_ended", ["ended_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("traffic_intervals", schema=None) as batch_op:
        batch_op.drop_index("ix_traffic_intervals_ended")
        batch_op.drop_index("ix_traffic_intervals_consumed")
    op.drop_table("traffic_intervals")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_column("epoch")
