from datetime import datetime
from uuid import UUID

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class ItemAvailability(Base):
    """An item the program does not want recommended to everyone (``docs/recommendations.md``):
    out of stock (``available`` false) or only for members of some tiers (``tiers``, tier
    ids; None: every tier). An item without a row is recommended to anyone."""

    __tablename__ = "item_availability"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    available: Mapped[bool] = mapped_column(Boolean)
    tiers: Mapped[list[str] | None] = mapped_column(JSONType)
    updated_at: Mapped[datetime]
