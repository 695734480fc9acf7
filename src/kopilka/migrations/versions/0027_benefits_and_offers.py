"""Benefits that work and personal offers.

``member_benefits`` rows may be granted by journeys or staff as well as by rules: a grant
names its idempotency key (``grant_key``, unique per program and member: a retried grant
finds the first one) and may carry a title. Rewards may be exclusive to tiers that list
their tag (``exclusive_tag``) and open early to tiers with early access
(``early_access_days``). Programs invite tiers to events (``program_events``) and members
accept them (``event_acceptances``).

Revision ID: 0027_benefits_and_offers
Revises: 0026_journeys
Create Date: 2026-12-05 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0027_benefits_and_offers"
down_revision: str | None = "0026_journeys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("member_benefits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grant_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("title", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_member_benefits_program_id_member_id_grant_key"),
            ["program_id", "member_id", "grant_key"],
        )
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exclusive_tag", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("early_access_days", sa.Integer(), nullable=True))
    op.create_table(
        "program_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("starts_at", WHEN, nullable=False),
        sa.Column("tiers", JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_events")),
        sa.UniqueConstraint("program_id", "key", name=op.f("uq_program_events_program_id_key")),
    )
    op.create_table(
        "event_acceptances",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("accepted_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["program_events.id"],
            name=op.f("fk_event_acceptances_event_id_program_events"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_event_acceptances_member_id_members")
        ),
        sa.PrimaryKeyConstraint("event_id", "member_id", name=op.f("pk_event_acceptances")),
    )


def downgrade() -> None:
    op.drop_table("event_acceptances")
    op.drop_table("program_events")
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.drop_column("early_access_days")
        batch_op.drop_column("exclusive_tag")
    with op.batch_alter_table("member_benefits", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_member_benefits_program_id_member_id_grant_key"), type_="unique"
        )
        batch_op.drop_column("title")
        batch_op.drop_column("grant_key")
