"""The customer 360 profile: gender, city, address, preferred store and channel.

Revision ID: 0012_member_profile
Revises: 0011_messaging
Create Date: 2026-12-05 07:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_member_profile"
down_revision: str | None = "0011_messaging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


PROFILE_COLUMNS = (
    ("gender", 8),
    ("city", 100),
    ("address", 300),
    ("preferred_store", 64),
    ("preferred_channel", 8),
)


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        for name, length in PROFILE_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        for name, _ in reversed(PROFILE_COLUMNS):
            batch.drop_column(name)
