"""Outbox: the index of events not yet delivered covers stamped rows only.

A row written at the till has no delivery sequence yet; indexing it as undelivered cost
every purchase one more index entry per event. The worker marks delivery by partition and
sequence, so that is what the index now holds.

Revision ID: 0009_outbox_undelivered
Revises: 0008_event_delivery
Create Date: 2026-12-05 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_outbox_undelivered"
down_revision: str | None = "0008_event_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDELIVERED = "seq IS NOT NULL AND published_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unpublished",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )
        batch_op.create_index(
            "ix_outbox_undelivered",
            ["partition", "seq"],
            unique=False,
            postgresql_where=sa.text(UNDELIVERED),
            sqlite_where=sa.text(UNDELIVERED),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_undelivered",
            postgresql_where=sa.text(UNDELIVERED),
            sqlite_where=sa.text(UNDELIVERED),
        )
        batch_op.create_index(
            "ix_outbox_unpublished",
            ["id"],
            unique=False,
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )
