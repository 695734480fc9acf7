"""Purchases without a member, and their claims.

Revision ID: 0020_anonymous_purchases
Revises: 0019_shop_widget
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

revision: str = "0020_anonymous_purchases"
down_revision: str | None = "0019_shop_widget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
