from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class EventAcceptance(Base):
    """A member's answer to an event's invitation, one row per member and event:
    ``accepted`` (takes one of the event's places) or ``declined``. ``accepted_at`` is when
    they last accepted (null if they declined without accepting); answering the same again
    changes nothing."""

    __tablename__ = "event_acceptances"

    event_id: Mapped[UUID] = mapped_column(ForeignKey("program_events.id"), primary_key=True)
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default="accepted", server_default="accepted")
    accepted_at: Mapped[datetime | None]
    declined_at: Mapped[datetime | None]
