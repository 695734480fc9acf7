from uuid import UUID

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class ItemPopularity(Base):
    """How many members bought an item, and in how many purchases, as of the program's last
    build (``docs/recommendations.md``); its name and category as the tills last sent them.
    The index gives a category's most bought items in order."""

    __tablename__ = "item_popularity"
    __table_args__ = (
        Index("ix_item_popularity_program_category", "program_id", "category", "buyers"),
    )

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(100))
    buyers: Mapped[int] = mapped_column(Integer)
    purchases: Mapped[int] = mapped_column(Integer)
