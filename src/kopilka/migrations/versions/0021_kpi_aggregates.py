"""Daily aggregates of the program's KPIs, kept from events.

Revision ID: 0021_kpi_aggregates
Revises: 0020_anonymous_purchases
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_kpi_aggregates"
down_revision: str | None = "0020_anonymous_purchases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kpi_days",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("store", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("member", sa.Boolean(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("points_spent", sa.BigInteger(), nullable=False),
        sa.Column("paid_with_points", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("returns", sa.Integer(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "day", "store", "channel", "tier", "member", name=op.f("pk_kpi_days")
        ),
    )
    op.create_table(
        "kpi_point_days",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=32), nullable=False),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("reversed", sa.BigInteger(), nullable=False),
        sa.Column("redeemed", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("expired", sa.BigInteger(), nullable=False),
        sa.Column("adjusted", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "day", "currency", name=op.f("pk_kpi_point_days")),
    )
    op.create_table(
        "kpi_member_months",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("era", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("active", sa.BigInteger(), nullable=False),
        sa.Column("multi", sa.BigInteger(), nullable=False),
        sa.Column("first_month", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "era", name=op.f("pk_kpi_member_months")),
    )
    op.create_index(
        "ix_kpi_member_months_program_era",
        "kpi_member_months",
        ["program_id", "era", "tier", "first_month", "active", "multi"],
    )
    op.create_table(
        "kpi_members",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("joined_at", WHEN, nullable=False),
        sa.Column("last_purchase_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_kpi_members")),
    )
    op.create_index(
        "ix_kpi_members_program",
        "kpi_members",
        ["program_id", "gone", "tier", "joined_at", "last_purchase_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_kpi_members_program", table_name="kpi_members")
    op.drop_table("kpi_members")
    op.drop_index("ix_kpi_member_months_program_era", table_name="kpi_member_months")
    op.drop_table("kpi_member_months")
    op.drop_table("kpi_point_days")
    op.drop_table("kpi_days")
