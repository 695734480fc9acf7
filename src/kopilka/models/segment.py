from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Segment(Base):
    """A named set of members: ``dynamic`` (a definition of predicates, membership kept
    current) or ``static`` (an uploaded list). ``docs/segments.md``."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10))
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(10))  # active | archived
    version: Mapped[int] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer)
    refreshed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
