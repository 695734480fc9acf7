"""What liability, breakage and campaign holdouts need.

Revision ID: 0023_finance_and_holdouts
Revises: 0022_member_predictions
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

revision: str = "0023_finance_and_holdouts"
down_revision: str | None = "0022_member_predictions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
