from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class CouponRedemption(Base):
    """A code used on a purchase, with the discount it gave. ``given_back`` once a return
    of the whole purchase handed the use back to the code."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        Index("ix_coupon_redemptions_code", "code_id"),
        Index("ix_coupon_redemptions_member_campaign", "member_id", "campaign_id"),
        Index("ix_coupon_redemptions_purchase", "purchase_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    code_id: Mapped[UUID] = mapped_column(ForeignKey("coupon_codes.id"))
    campaign_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column()
    purchase_id: Mapped[UUID] = mapped_column()
    discount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # applied | given_back
    created_at: Mapped[datetime]
    returned_at: Mapped[datetime | None]
