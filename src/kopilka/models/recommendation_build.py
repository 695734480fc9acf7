from datetime import datetime
from uuid import UUID

from sqlalchemy import Double, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class RecommendationBuild(Base):
    """One build of a program's item-to-item model (``docs/recommendations.md``), kept as a
    history: the newest row says when the program's ``item_neighbours`` and
    ``item_popularity`` rows were written and from how much history."""

    __tablename__ = "recommendation_builds"
    __table_args__ = (Index("ix_recommendation_builds_program_built", "program_id", "built_at"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    built_at: Mapped[datetime]
    members: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer)
    neighbours: Mapped[int] = mapped_column(Integer)
    neighbours_per_item: Mapped[int] = mapped_column(Integer)
    shrinkage: Mapped[float] = mapped_column(Double)
    seconds: Mapped[float] = mapped_column(Double)
