"""Customer-lifetime models fitted per program and each member's predictions.

Revision ID: 0022_member_predictions
Revises: 0021_kpi_aggregates
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

revision: str = "0022_member_predictions"
down_revision: str | None = "0021_kpi_aggregates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
