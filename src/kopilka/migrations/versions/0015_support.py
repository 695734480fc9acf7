"""Interactions, tickets and their replies, surveys and their answers.

Revision ID: 0015_support
Revises: 0014_segments
Create Date: 2026-12-05 07:20:00.000000
"""

from collections.abc import Sequence

revision: str = "0015_support"
down_revision: str | None = "0014_segments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
