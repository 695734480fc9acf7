from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class CouponCode(Base):
    """One code of a campaign: public, or personal to ``member_id``.

    ``uses`` only grows through a conditional update (``uses < max_uses``), so two tills
    presenting the last use of a code at once cannot both get it; a return that gives the
    code back lowers it again.
    """

    __tablename__ = "coupon_codes"
    __table_args__ = (
        UniqueConstraint("program_id", "code"),
        Index("ix_coupon_codes_campaign", "campaign_id"),
        Index("ix_coupon_codes_member", "member_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    campaign_id: Mapped[UUID] = mapped_column(ForeignKey("coupon_campaigns.id"))
    code: Mapped[str] = mapped_column(String(100))
    member_id: Mapped[UUID | None] = mapped_column()
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16))  # active | disabled
    valid_until: Mapped[datetime | None]
    source_type: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[datetime]
