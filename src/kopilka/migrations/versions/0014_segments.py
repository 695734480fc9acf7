"""Member facts derived from events; segments and their membership.

Revision ID: 0014_segments
Revises: 0013_stores
Create Date: 2026-12-05 07:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_segments"
down_revision: str | None = "0013_stores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "member_facts",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("first_purchase_at", WHEN, nullable=True),
        sa.Column("last_purchase_at", WHEN, nullable=True),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("spend", sa.BigInteger(), nullable=False),
        sa.Column("returns", sa.Integer(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=False),
        sa.Column("purchases_30d", sa.Integer(), nullable=False),
        sa.Column("spend_30d", sa.BigInteger(), nullable=False),
        sa.Column("purchases_90d", sa.Integer(), nullable=False),
        sa.Column("spend_90d", sa.BigInteger(), nullable=False),
        sa.Column("purchases_12m", sa.Integer(), nullable=False),
        sa.Column("spend_12m", sa.BigInteger(), nullable=False),
        sa.Column("windows_on", sa.Date(), nullable=False),
        sa.Column("windows_until", sa.Date(), nullable=True),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("stores", JSON, nullable=False),
        sa.Column("rfm_recency", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_frequency", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_monetary", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_group", sa.String(length=32), nullable=True),
        sa.Column("rfm_at", WHEN, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_facts_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_facts")),
    )
    op.create_index(
        "ix_member_facts_program_last", "member_facts", ["program_id", "last_purchase_at"]
    )
    op.create_index("ix_member_facts_program_rfm", "member_facts", ["program_id", "rfm_group"])
    for window in ("30d", "90d", "12m"):
        op.create_index(
            f"ix_member_facts_program_spend_{window}",
            "member_facts",
            ["program_id", f"spend_{window}", "member_id"],
        )
    op.create_index(
        "ix_member_facts_program_windows_until", "member_facts", ["program_id", "windows_until"]
    )

    op.create_table(
        "member_days",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("spend", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "day", name=op.f("pk_member_days")),
    )

    op.create_table(
        "segments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("definition", JSON, nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("program_id", "key", name=op.f("uq_segments_program_id_key")),
    )

    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("entered_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_segment_members_segment_id_segments")
        ),
        sa.PrimaryKeyConstraint("segment_id", "member_id", name=op.f("pk_segment_members")),
    )
    op.create_index("ix_segment_members_member", "segment_members", ["member_id", "segment_id"])


def downgrade() -> None:
    op.drop_index("ix_segment_members_member", table_name="segment_members")
    op.drop_table("segment_members")
    op.drop_table("segments")
    op.drop_table("member_days")
    op.drop_index("ix_member_facts_program_windows_until", table_name="member_facts")
    for window in ("30d", "90d", "12m"):
        op.drop_index(f"ix_member_facts_program_spend_{window}", table_name="member_facts")
    op.drop_index("ix_member_facts_program_rfm", table_name="member_facts")
    op.drop_index("ix_member_facts_program_last", table_name="member_facts")
    op.drop_table("member_facts")
