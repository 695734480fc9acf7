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


class GiftCardTransaction(Base):
    """One movement of a gift card or wallet; the journal is append-only.

    ``amount`` is signed (issue, top-up and refund credit; payment and expiry debit) and
    ``balance_after`` is the card's balance once it was applied. ``seq`` numbers a card's
    movements 1, 2, 3 … with no gaps, so the journal replays in the order it was written.
    ``external_id`` is the caller's id of the movement: one per card and kind, which makes a
    retried payment a duplicate the database refuses. ``refund_of`` is the payment a refund
    gives money back for; ``reference`` is free text such as the purchase or order id.
    """

    __tablename__ = "gift_card_transactions"
    __table_args__ = (
        UniqueConstraint("card_id", "seq"),
        UniqueConstraint("card_id", "kind", "external_id"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        Index(
            "ix_gift_card_transactions_refund_of",
            "refund_of",
            postgresql_where=text("refund_of IS NOT NULL"),
            sqlite_where=text("refund_of IS NOT NULL"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    card_id: Mapped[UUID] = mapped_column(ForeignKey("gift_cards.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # issue | top_up | payment | refund | expiry
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    external_id: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200))
    refund_of: Mapped[UUID | None] = mapped_column(ForeignKey("gift_card_transactions.id"))
    created_at: Mapped[datetime]
