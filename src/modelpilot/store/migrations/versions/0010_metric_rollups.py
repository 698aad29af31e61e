"""metric rollups

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("span", sa.Float(), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("deployment", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.String(length=300), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=True),
        sa.Column("last_ts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "name", "deployment", "labels", "span", "start", name="uq_metric_rollups_series"
        ),
    )
    with op.batch_alter_table("metric_rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_metric_rollups_name_span_start",
            ["name", "deployment", "span", "start"],
            unique=False,
        )
        batch_op.create_index("ix_metric_rollups_span_start", ["span", "start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("metric_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_rollups_span_start")
        batch_op.drop_index("ix_metric_rollups_name_span_start")
    op.drop_table("metric_rollups")
