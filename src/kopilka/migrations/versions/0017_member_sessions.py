"""Members signed in to the app: sessions and one-time sign-in codes.

Revision ID: 0017_member_sessions
Revises: 0016_staff_audit
Create Date: 2026-12-05 10:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017_member_sessions"
down_revision: str | None = "0016_staff_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "member_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name="fk_member_sessions_member_id_members"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_member_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_member_sessions_token_hash"),
    )
    op.create_index("ix_member_sessions_member_id", "member_sessions", ["member_id"])
    op.create_table(
        "member_sign_in_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", TS, nullable=True),
        # What entering the code does besides signing in: the consents ticked at sign-up,
        # or the new e-mail or phone it confirms.
        sa.Column("on_use", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name="fk_member_sign_in_codes_member_id_members"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_member_sign_in_codes"),
    )
    op.create_index(
        "ix_member_sign_in_codes_member", "member_sign_in_codes", ["member_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("member_sign_in_codes")
    op.drop_table("member_sessions")
