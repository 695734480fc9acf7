from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class GiftCard(Base):
    """A stored-value account in minor units of the program's money currency: a gift card
    (a code anyone holding it can pay with, optionally given to a member) or a member's
    wallet (``kind = 'wallet'``, at most one per member and program).

    ``balance`` always equals the sum of the card's transactions and is never negative:
    every debit is a conditional update that takes the row lock, and the CHECK constraint
    refuses whatever slipped past it. ``last_seq`` is the sequence number of the card's
    latest transaction: each movement raises it by one in the same update that changes the
    balance, which orders the card's journal without relying on clocks.
    """

    __tablename__ = "gift_cards"
    __table_args__ = (
        UniqueConstraint("program_id", "code"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("kind <> 'wallet' OR member_id IS NOT NULL", name="wallet_has_member"),
        Index(
            "uq_gift_cards_wallet",
            "program_id",
            "member_id",
            unique=True,
            postgresql_where=text("kind = 'wallet'"),
            sqlite_where=text("kind = 'wallet'"),
        ),
        Index("ix_gift_cards_member", "member_id", "issued_at"),
        Index(
            "ix_gift_cards_expiring",
            "program_id",
            "expires_at",
            postgresql_where=text("status <> 'expired' AND expires_at IS NOT NULL"),
            sqlite_where=text("status <> 'expired' AND expires_at IS NOT NULL"),
        ),
        Index("ix_gift_cards_source", "program_id", "source_type", "source_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    code: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # gift_card | wallet
    member_id: Mapped[UUID | None] = mapped_column(ForeignKey("members.id"))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger)
    initial_amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # active | disabled | expired
    expires_at: Mapped[datetime | None]
    last_seq: Mapped[int] = mapped_column(BigInteger)
    source_type: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[datetime]
    updated_at: Mapped[datetime]
