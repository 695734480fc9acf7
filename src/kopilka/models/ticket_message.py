from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class TicketMessage(Base):
    """One message on a ticket: the member's words (``author`` member), a public reply of
    staff (``public``: the member is told) or an internal note (never shown to the member)."""

    __tablename__ = "ticket_messages"
    __table_args__ = (Index("ix_ticket_messages_ticket", "ticket_id", "created_at", "id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    ticket_id: Mapped[UUID] = mapped_column(ForeignKey("tickets.id"))
    member_id: Mapped[UUID] = mapped_column()
    public: Mapped[bool] = mapped_column()
    author: Mapped[str] = mapped_column(String(10))  # member | staff
    author_key: Mapped[UUID | None] = mapped_column()
    author_staff: Mapped[UUID | None] = mapped_column()
    author_name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(10))  # api | app | email
    created_at: Mapped[datetime]
