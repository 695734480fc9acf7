from datetime import datetime
from uuid import UUID

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class ProgramEvent(Base):
    """An event the program invites members to (a private sale, a tasting): members of
    ``tiers``, and of tiers whose benefits list the event's key in ``events``.
    ``capacity`` null: no limit on places. ``status``: ``scheduled`` or ``cancelled``
    (for good)."""

    __tablename__ = "program_events"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    place: Mapped[str | None] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    capacity: Mapped[int | None]
    tiers: Mapped[list[str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="scheduled", server_default="scheduled")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
