from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Purchase(Base):
    """A purchase as the till or shop reported it, with what it earned per currency.

    ``member_id`` is NULL for a purchase recorded without a member (it earned nothing) until
    a member claims it by its receipt id (``claimed_at``)."""

    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("program_id", "external_id"),
        Index("ix_purchases_member_occurred", "member_id", "occurred_at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID | None] = mapped_column(ForeignKey("members.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime]
    store: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(8))
    total: Mapped[int] = mapped_column(BigInteger)
    returned_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # What else the rules may read, kept for replays: region, payment method, coupons
    # (NULL when the purchase had none of them).
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # How the basket was paid besides money: coupon discounts and points spent
    # (NULL when neither): {"discount": ..., "points_spent": ..., "points_value": ...}.
    payments: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # {currency: points} earned, and reversed so far by returns.
    earned: Mapped[dict[str, Any]] = mapped_column(JSONType)
    reversed: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The first request's fingerprint and answer: a retry with the same external id and
    # body gets this answer back (the purchase is its own idempotency record).
    request_hash: Mapped[str] = mapped_column(String(64))
    answer: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
