"""Rewards shop and coupons: campaigns, codes and their uses, rewards, their code pools
and redemptions; how a purchase was paid besides money.

Revision ID: 0005_rewards_coupons
Revises: 0004_tiers
Create Date: 2026-12-02 17:12:21.492428
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_rewards_coupons"
down_revision: str | None = "0004_tiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coupon_campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("discount_kind", sa.String(length=16), nullable=False),
        sa.Column("discount_value", sa.BigInteger(), nullable=False),
        sa.Column("max_discount", sa.BigInteger(), nullable=True),
        sa.Column("free_sku", sa.String(length=100), nullable=True),
        sa.Column("min_basket", sa.BigInteger(), nullable=False),
        sa.Column(
            "categories",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "skus",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("uses_per_code", sa.Integer(), nullable=True),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("total_limit", sa.Integer(), nullable=True),
        sa.Column("redeemed_count", sa.BigInteger(), nullable=False),
        sa.Column("stackable", sa.Boolean(), nullable=False),
        sa.Column("give_back_on_return", sa.Boolean(), nullable=False),
        sa.Column("code_pattern", sa.String(length=100), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_campaigns")),
        sa.UniqueConstraint("program_id", "key", name=op.f("uq_coupon_campaigns_program_id_key")),
    )
    op.create_table(
        "rewards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("image_url", sa.String(length=500), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=32), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column(
            "tier_prices",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("stock", sa.BigInteger(), nullable=True),
        sa.Column("available_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("available_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("min_tier", sa.String(length=32), nullable=True),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("coupon_campaign", sa.String(length=100), nullable=True),
        sa.Column("gift_amount", sa.BigInteger(), nullable=True),
        sa.Column("code_source", sa.String(length=16), nullable=True),
        sa.Column("code_pattern", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint("program_id", "key", name=op.f("uq_rewards_program_id_key")),
    )
    op.create_table(
        "coupon_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("source_id", sa.String(length=200), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["coupon_campaigns.id"],
            name=op.f("fk_coupon_codes_campaign_id_coupon_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_codes")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_coupon_codes_program_id_code")),
    )
    with op.batch_alter_table("coupon_codes", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_codes_campaign", ["campaign_id"], unique=False)
        batch_op.create_index("ix_coupon_codes_member", ["member_id"], unique=False)

    op.create_table(
        "reward_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("redemption_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_codes_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_codes")),
        sa.UniqueConstraint("reward_id", "code", name=op.f("uq_reward_codes_reward_id_code")),
    )
    with op.batch_alter_table("reward_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reward_codes_free",
            ["reward_id"],
            unique=False,
            postgresql_where=sa.text("redemption_id IS NULL"),
            sqlite_where=sa.text("redemption_id IS NULL"),
        )

    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("code_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["coupon_codes.id"],
            name=op.f("fk_coupon_redemptions_code_id_coupon_codes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_redemptions")),
    )
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_redemptions_code", ["code_id"], unique=False)
        batch_op.create_index(
            "ix_coupon_redemptions_member_campaign", ["member_id", "campaign_id"], unique=False
        )
        batch_op.create_index("ix_coupon_redemptions_purchase", ["purchase_id"], unique=False)

    op.create_table(
        "reward_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("currency", sa.String(length=32), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("ledger_redemption_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fulfilled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_reward_redemptions_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_redemptions_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_redemptions")),
        sa.UniqueConstraint(
            "program_id", "external_id", name=op.f("uq_reward_redemptions_program_id_external_id")
        ),
        sa.UniqueConstraint("reward_id", "code", name=op.f("uq_reward_redemptions_reward_id_code")),
    )
    with op.batch_alter_table("reward_redemptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reward_redemptions_member", ["member_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_reward_redemptions_reward_member", ["reward_id", "member_id"], unique=False
        )

    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "payments",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.drop_column("payments")

    with op.batch_alter_table("reward_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_reward_redemptions_reward_member")
        batch_op.drop_index("ix_reward_redemptions_member")

    op.drop_table("reward_redemptions")
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_redemptions_purchase")
        batch_op.drop_index("ix_coupon_redemptions_member_campaign")
        batch_op.drop_index("ix_coupon_redemptions_code")

    op.drop_table("coupon_redemptions")
    with op.batch_alter_table("reward_codes", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_reward_codes_free",
            postgresql_where=sa.text("redemption_id IS NULL"),
            sqlite_where=sa.text("redemption_id IS NULL"),
        )

    op.drop_table("reward_codes")
    with op.batch_alter_table("coupon_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_codes_member")
        batch_op.drop_index("ix_coupon_codes_campaign")

    op.drop_table("coupon_codes")
    op.drop_table("rewards")
    op.drop_table("coupon_campaigns")
