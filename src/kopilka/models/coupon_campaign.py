from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class CouponCampaign(Base):
    """What a family of coupon codes gives and when it may be used.

    ``redeemed_count`` moves only for campaigns with a ``total_limit``: it is the one shared
    row such a campaign needs, taken with a conditional update so no till can pass the limit.
    """

    __tablename__ = "coupon_campaigns"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # percent | fixed | free_product | free_delivery
    discount_kind: Mapped[str] = mapped_column(String(16))
    discount_value: Mapped[int] = mapped_column(BigInteger, default=0)
    max_discount: Mapped[int | None] = mapped_column(BigInteger)
    free_sku: Mapped[str | None] = mapped_column(String(100))
    min_basket: Mapped[int] = mapped_column(BigInteger, default=0)
    categories: Mapped[list[str] | None] = mapped_column(JSONType)
    skus: Mapped[list[str] | None] = mapped_column(JSONType)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    uses_per_code: Mapped[int | None]
    per_member_limit: Mapped[int | None]
    total_limit: Mapped[int | None]
    redeemed_count: Mapped[int] = mapped_column(BigInteger, default=0)
    stackable: Mapped[bool] = mapped_column(Boolean, default=False)
    give_back_on_return: Mapped[bool] = mapped_column(Boolean, default=True)
    code_pattern: Mapped[str] = mapped_column(String(100))
    valid_days: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16))  # active | paused | archived
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
