from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Reward(Base):
    """An item of the rewards shop. ``stock`` is what is left (NULL: unlimited); it only
    falls through a conditional update (``stock > 0``), so the last item goes to one member."""

    __tablename__ = "rewards"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(500))
    category: Mapped[str | None] = mapped_column(String(100))
    # physical | discount_coupon | free_product | free_delivery | gift_certificate | event
    # | digital | charity
    kind: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(32))
    price: Mapped[int] = mapped_column(BigInteger)
    tier_prices: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    stock: Mapped[int | None] = mapped_column(BigInteger)
    available_from: Mapped[datetime | None]
    available_until: Mapped[datetime | None]
    min_tier: Mapped[str | None] = mapped_column(String(32))
    per_member_limit: Mapped[int | None]
    # Only tiers whose benefits list this tag in ``exclusive_rewards`` see and take it.
    exclusive_tag: Mapped[str | None] = mapped_column(String(100))
    # Tiers with ``early_access`` may take it this many days before ``available_from``.
    early_access_days: Mapped[int | None]
    coupon_campaign: Mapped[str | None] = mapped_column(String(100))
    gift_amount: Mapped[int | None] = mapped_column(BigInteger)
    # digital rewards: codes from the reward's pool (``pool``) or made at redemption
    # (``generated``, by ``code_pattern``)
    code_source: Mapped[str | None] = mapped_column(String(16))
    code_pattern: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # active | archived
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
