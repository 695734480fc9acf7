from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class PurchaseReturn(Base):
    """A full or partial return of an earlier purchase and the points it took back."""

    __tablename__ = "purchase_returns"
    __table_args__ = (UniqueConstraint("program_id", "external_id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    # NULL for a return of a purchase without a member (set when the purchase is claimed).
    member_id: Mapped[UUID | None] = mapped_column(index=True)
    purchase_id: Mapped[UUID] = mapped_column(ForeignKey("purchases.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime]
    amount: Mapped[int] = mapped_column(BigInteger)
    # {currency: points} taken back, and what the clawback policy left with the member.
    reversed: Mapped[dict[str, Any]] = mapped_column(JSONType)
    not_clawed_back: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime]
