"""Gift cards and wallets: stored-value accounts in minor units of the program's money
currency, and their append-only journal of movements.

Revision ID: 0006_gift_cards
Revises: 0005_rewards_coupons
Create Date: 2026-12-02 17:19:04.503405
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_gift_cards"
down_revision: str | None = "0005_rewards_coupons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gift_cards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("initial_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("source_id", sa.String(length=200), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind <> 'wallet' OR member_id IS NOT NULL",
            name=op.f("ck_gift_cards_wallet_has_member"),
        ),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_gift_cards_balance_not_negative")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_gift_cards_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_cards")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_gift_cards_program_id_code")),
    )
    with op.batch_alter_table("gift_cards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gift_cards_expiring",
            ["program_id", "expires_at"],
            unique=False,
            postgresql_where=sa.text("status <> 'expired' AND expires_at IS NOT NULL"),
            sqlite_where=sa.text("status <> 'expired' AND expires_at IS NOT NULL"),
        )
        batch_op.create_index("ix_gift_cards_member", ["member_id", "issued_at"], unique=False)
        batch_op.create_index(
            "ix_gift_cards_source", ["program_id", "source_type", "source_id"], unique=False
        )
        batch_op.create_index(
            "uq_gift_cards_wallet",
            ["program_id", "member_id"],
            unique=True,
            postgresql_where=sa.text("kind = 'wallet'"),
            sqlite_where=sa.text("kind = 'wallet'"),
        )

    op.create_table(
        "gift_card_transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("refund_of", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_gift_card_transactions_balance_after_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["gift_cards.id"],
            name=op.f("fk_gift_card_transactions_card_id_gift_cards"),
        ),
        sa.ForeignKeyConstraint(
            ["refund_of"],
            ["gift_card_transactions.id"],
            name=op.f("fk_gift_card_transactions_refund_of_gift_card_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_card_transactions")),
        sa.UniqueConstraint(
            "card_id",
            "kind",
            "external_id",
            name=op.f("uq_gift_card_transactions_card_id_kind_external_id"),
        ),
        sa.UniqueConstraint("card_id", "seq", name=op.f("uq_gift_card_transactions_card_id_seq")),
    )
    with op.batch_alter_table("gift_card_transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gift_card_transactions_refund_of",
            ["refund_of"],
            unique=False,
            postgresql_where=sa.text("refund_of IS NOT NULL"),
            sqlite_where=sa.text("refund_of IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("gift_card_transactions", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_gift_card_transactions_refund_of",
            postgresql_where=sa.text("refund_of IS NOT NULL"),
            sqlite_where=sa.text("refund_of IS NOT NULL"),
        )

    op.drop_table("gift_card_transactions")
    with op.batch_alter_table("gift_cards", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_gift_cards_wallet",
            postgresql_where=sa.text("kind = 'wallet'"),
            sqlite_where=sa.text("kind = 'wallet'"),
        )
        batch_op.drop_index("ix_gift_cards_source")
        batch_op.drop_index("ix_gift_cards_member")
        batch_op.drop_index(
            "ix_gift_cards_expiring",
            postgresql_where=sa.text("status <> 'expired' AND expires_at IS NOT NULL"),
            sqlite_where=sa.text("status <> 'expired' AND expires_at IS NOT NULL"),
        )

    op.drop_table("gift_cards")
