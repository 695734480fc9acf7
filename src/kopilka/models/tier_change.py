from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class TierChange(Base):
    """One change of a member's tier, kept for good: from, to, why, when."""

    __tablename__ = "tier_changes"
    __table_args__ = (Index("ix_tier_changes_member_at", "member_id", "at"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    from_tier: Mapped[str | None] = mapped_column(String(32))
    to_tier: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(500))
    program_version: Mapped[int | None]
    at: Mapped[datetime]
    created_at: Mapped[datetime]
