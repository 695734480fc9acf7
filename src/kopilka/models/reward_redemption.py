from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class RewardRedemption(Base):
    """A reward a member took: ``issued``, then ``fulfilled`` or ``cancelled`` (points
    refunded). ``ledger_redemption_id`` is the spend in the points ledger."""

    __tablename__ = "reward_redemptions"
    __table_args__ = (
        UniqueConstraint("program_id", "external_id"),
        # A code handed out twice for one reward would be a bug (two generated codes alike).
        UniqueConstraint("reward_id", "code"),
        Index("ix_reward_redemptions_member", "member_id", "created_at"),
        Index("ix_reward_redemptions_reward_member", "reward_id", "member_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    reward_id: Mapped[UUID] = mapped_column(ForeignKey("rewards.id"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(32))
    price: Mapped[int] = mapped_column(BigInteger)
    ledger_redemption_id: Mapped[UUID | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))  # issued | fulfilled | cancelled
    code: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    fulfilled_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
