"""Wallet passes: each program's signing settings and the devices that keep its members' passes current.

Revision ID: 0018_wallet_passes
Revises: 0017_member_sessions
Create Date: 2026-12-05 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018_wallet_passes"
down_revision: str | None = "0017_member_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "wallet_settings",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("apple_pass_type", sa.String(length=255), nullable=True),
        sa.Column("apple_key", sa.Text(), nullable=True),
        sa.Column("apple_key_password", sa.String(length=200), nullable=True),
        sa.Column("google_key", sa.Text(), nullable=True),
        sa.Column("token_secret", sa.String(length=64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("program_id", name="pk_wallet_settings"),
    )
    op.create_index("ix_wallet_settings_apple_pass_type", "wallet_settings", ["apple_pass_type"])
    op.create_table(
        "wallet_registrations",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("device_library_id", sa.String(length=128), nullable=False),
        sa.Column("pass_type_identifier", sa.String(length=255), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("push_token", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name="fk_wallet_registrations_member_id_members"
        ),
        sa.PrimaryKeyConstraint(
            "member_id",
            "device_library_id",
            "pass_type_identifier",
            name="pk_wallet_registrations",
        ),
    )
    op.create_index(
        "ix_wallet_registrations_device",
        "wallet_registrations",
        ["device_library_id", "pass_type_identifier"],
    )


def downgrade() -> None:
    op.drop_table("wallet_registrations")
    op.drop_table("wallet_settings")
