"""Member facts derived from events; segments and their membership.

Revision ID: 0014_segments
Revises: 0013_stores
Create Date: 2026-12-05 07:20:00.000000
"""

from collections.abc import Sequence

revision: str = "0014_segments"
down_revision: str | None = "0013_stores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
