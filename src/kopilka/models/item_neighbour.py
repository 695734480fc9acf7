from uuid import UUID

from sqlalchemy import Double, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class ItemNeighbour(Base):
    """One of an item's nearest items by co-purchase (``docs/recommendations.md``): written
    by a build, all of a program's rows replaced at once. ``rank`` 1 is the most similar;
    ``score`` is the shrunk cosine similarity, ``together`` the members who bought both.
    The key reads an item's neighbours in order from the index alone."""

    __tablename__ = "item_neighbours"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    rank: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    neighbour: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Double)
    together: Mapped[int] = mapped_column(Integer)
