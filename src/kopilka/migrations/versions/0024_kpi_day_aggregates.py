"""Participants, activity and buyers summed per day and month, whatever the number of members.

``kpi_tier_days`` (joins, first purchases and changes of the active members per day and tier)
and ``kpi_buyer_months`` (buyers per month by their months before and after) are kept as the
difference of what each member touched adds before and after; ``kpi_members`` gains the days
each member bought on.

The member rows of the KPIs are emptied, so that what they hold and the new sums agree (both
empty): run ``kopilka analytics rebuild-kpis`` after this revision to work them out for the
existing members (the daily checks and points are kept).

Revision ID: 0024_kpi_day_aggregates
Revises: 0023_finance_and_holdouts
Create Date: 2026-12-05 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_kpi_day_aggregates"
down_revision: str | None = "0023_finance_and_holdouts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kpi_tier_days",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("joined", sa.Integer(), nullable=False),
        sa.Column("first_bought", sa.Integer(), nullable=False),
        sa.Column("active_30", sa.Integer(), nullable=False),
        sa.Column("active_90", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "day", "tier", name=op.f("pk_kpi_tier_days")),
    )
    op.create_table(
        "kpi_buyer_months",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=False),
        sa.Column("next", sa.Integer(), nullable=False),
        sa.Column("multi", sa.Boolean(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id",
            "month",
            "tier",
            "previous",
            "next",
            "multi",
            name=op.f("pk_kpi_buyer_months"),
        ),
    )
    with op.batch_alter_table("kpi_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("days", sa.Text(), server_default="", nullable=False))
    op.execute("DELETE FROM kpi_member_months")
    op.execute("DELETE FROM kpi_members")


def downgrade() -> None:
    with op.batch_alter_table("kpi_members", schema=None) as batch_op:
        batch_op.drop_column("days")
    op.drop_table("kpi_buyer_months")
    op.drop_table("kpi_tier_days")
