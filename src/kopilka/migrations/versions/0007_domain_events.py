"""Domain events carry their own id and the version of their payload.

Revision ID: 0007_domain_events
Revises: 0006_gift_cards
Create Date: 2026-12-04 23:55:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_domain_events"
down_revision: str | None = "0006_gift_cards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    # Events written before this revision get ids of their own.
    bind = op.get_bind()
    outbox = sa.table(
        "outbox_events", sa.column("id", sa.BigInteger), sa.column("event_id", sa.Uuid)
    )
    ids = [
        row[0] for row in bind.execute(sa.select(outbox.c.id).where(outbox.c.event_id.is_(None)))
    ]
    for start in range(0, len(ids), 1000):
        bind.execute(
            outbox.update().where(outbox.c.id == sa.bindparam("row_id")),
            [{"row_id": i, "event_id": uuid.uuid4()} for i in ids[start : start + 1000]],
        )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_outbox_events_event_id"), ["event_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_outbox_events_event_id"), type_="unique")
        batch_op.drop_column("version")
        batch_op.drop_column("event_id")
