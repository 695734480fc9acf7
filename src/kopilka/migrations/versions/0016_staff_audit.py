"""Staff accounts and sessions, the audit log.

Revision ID: 0016_staff_audit
Revises: 0015_support
Create Date: 2026-12-05 07:20:00.000000
"""

from collections.abc import Sequence

revision: str = "0016_staff_audit"
down_revision: str | None = "0015_support"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
