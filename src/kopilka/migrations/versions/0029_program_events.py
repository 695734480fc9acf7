"""Program events members are invited to: what a member needs to decide (where, when it
ends, how many places), and a member's answer.

``program_events`` gains a description, a place, an end, a capacity (null: no limit), a
status (``scheduled`` or ``cancelled``) and when it last changed. ``event_acceptances``
keeps a member's answer: ``accepted`` or ``declined``, with when they last accepted (null
for a member who declined without accepting) and when they declined.

Revision ID: 0029_program_events
Revises: 0028_recommendations
Create Date: 2026-12-05 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029_program_events"
down_revision: str | None = "0028_recommendations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("program_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("place", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("ends_at", WHEN, nullable=True))
        batch_op.add_column(sa.Column("capacity", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="scheduled", nullable=False)
        )
        batch_op.add_column(sa.Column("updated_at", WHEN, nullable=True))
    with op.batch_alter_table("event_acceptances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="accepted", nullable=False)
        )
        batch_op.add_column(sa.Column("declined_at", WHEN, nullable=True))
        batch_op.alter_column("accepted_at", existing_type=WHEN, nullable=True)


def downgrade() -> None:
    # A declined answer has no place in the old table (it knew acceptances only).
    op.execute("DELETE FROM event_acceptances WHERE status <> 'accepted'")
    with op.batch_alter_table("event_acceptances", schema=None) as batch_op:
        batch_op.alter_column("accepted_at", existing_type=WHEN, nullable=False)
        batch_op.drop_column("declined_at")
        batch_op.drop_column("status")
    with op.batch_alter_table("program_events", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("status")
        batch_op.drop_column("capacity")
        batch_op.drop_column("ends_at")
        batch_op.drop_column("place")
        batch_op.drop_column("description")
