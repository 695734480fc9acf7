"""The web-shop widget: the shops allowed to show it and the short sessions it runs on.

Revision ID: 0019_shop_widget
Revises: 0018_wallet_passes
Create Date: 2026-12-05 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019_shop_widget"
down_revision: str | None = "0018_wallet_passes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "widget_settings",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("allowed_origins", JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("program_id", name="pk_widget_settings"),
    )
    op.create_table(
        "widget_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("max_points", sa.BigInteger(), nullable=True),
        sa.Column("points_held", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name="fk_widget_sessions_member_id_members"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_widget_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_widget_sessions_token_hash"),
    )
    op.create_index("ix_widget_sessions_member_id", "widget_sessions", ["member_id"])


def downgrade() -> None:
    op.drop_table("widget_sessions")
    op.drop_table("widget_settings")
