"""Daily aggregates of the program's KPIs, kept from events.

Revision ID: 0021_kpi_aggregates
Revises: 0020_anonymous_purchases
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

revision: str = "0021_kpi_aggregates"
down_revision: str | None = "0020_anonymous_purchases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
