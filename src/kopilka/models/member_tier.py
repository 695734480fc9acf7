from datetime import date, datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class MemberTier(Base):
    """A member's place on the tier ladder. No row: the entry tier, nothing to review.

    ``tier`` is what the member has: the higher of ``earned`` (qualification) and a manual
    tier that has not ended. The purchase path changes it under the member's balance lock.
    """

    __tablename__ = "member_tiers"
    __table_args__ = (
        Index("ix_member_tiers_review", "program_id", "review_on"),
        Index("ix_member_tiers_manual_until", "program_id", "manual_until"),
    )

    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    tier: Mapped[str] = mapped_column(String(32))
    earned: Mapped[str] = mapped_column(String(32))
    achieved_at: Mapped[datetime | None]
    achieved_from: Mapped[str | None] = mapped_column(String(32))
    achieved_by: Mapped[str | None] = mapped_column(String(64))
    review_on: Mapped[date | None]
    grace_until: Mapped[date | None]
    manual_tier: Mapped[str | None] = mapped_column(String(32))
    manual_until: Mapped[datetime | None]
    manual_reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime]
