"""Stores with coordinates, hours and tags.

Revision ID: 0013_stores
Revises: 0012_member_profile
Create Date: 2026-12-05 07:20:00.000000
"""

from collections.abc import Sequence

revision: str = "0013_stores"
down_revision: str | None = "0012_member_profile"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
