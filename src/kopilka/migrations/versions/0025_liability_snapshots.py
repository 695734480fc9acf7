"""Daily liability snapshots.

The liability report reads every lot of a program (twice: open lots by expiry, all lots by
earning month), which is too slow for each KPI answer. A daily job stores the report's
figures per currency and local day; the KPIs' totals read the latest row and finance reads
the rows as a history. The key is the program's local day, so taking the snapshot again the
same day replaces that day's row; it also serves "the latest row of a currency" and a range
of days.

Revision ID: 0025_liability_snapshots
Revises: 0024_kpi_day_aggregates
Create Date: 2026-12-05 16:21:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_liability_snapshots"
down_revision: str | None = "0024_kpi_day_aggregates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "liability_snapshots",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outstanding_points", sa.BigInteger(), nullable=False),
        sa.Column("pending_points", sa.BigInteger(), nullable=False),
        sa.Column("overdue_points", sa.BigInteger(), nullable=False),
        sa.Column("outstanding_value", sa.BigInteger(), nullable=True),
        sa.Column("breakage_rate", sa.Double(), nullable=True),
        sa.Column("liability_after_breakage", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "program_id", "currency", "day", name=op.f("pk_liability_snapshots")
        ),
    )


def downgrade() -> None:
    op.drop_table("liability_snapshots")
