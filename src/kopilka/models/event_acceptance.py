from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class EventAcceptance(Base):
    """A member accepted an event's invitation; one row per member and event (accepting
    again changes nothing)."""

    __tablename__ = "event_acceptances"

    event_id: Mapped[UUID] = mapped_column(ForeignKey("program_events.id"), primary_key=True)
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    accepted_at: Mapped[datetime]
