from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class Ticket(Base):
    """A member's support request.

    ``status``: new → open → waiting → resolved → closed (``closed`` is final). SLA:
    ``first_response_due_at`` and ``resolution_due_at`` from the priority; while the ticket
    waits on the member (``paused_at`` set) the clock stops, and both are moved on by the
    pause when it ends. ``due_at`` is the deadline the queue sorts by (the first response's
    until it is given, then the resolution's). The ``*_breached`` flags are set once, by the
    breach job, which emits ``ticket.sla_breached``.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_queue", "program_id", "status", "due_at", "id"),
        Index("ix_tickets_program_due", "program_id", "due_at", "id"),
        Index("ix_tickets_member", "member_id", "created_at", "id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    subject: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(10))  # low | normal | high | urgent
    status: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(10))  # staff | api | app | email
    language: Mapped[str | None] = mapped_column(String(8))
    assignee_id: Mapped[UUID | None] = mapped_column()
    store: Mapped[str | None] = mapped_column(String(100))
    purchase_id: Mapped[UUID | None] = mapped_column()
    purchase_external_id: Mapped[str | None] = mapped_column(String(200))
    opened_by_key: Mapped[UUID | None] = mapped_column()
    opened_by_staff: Mapped[UUID | None] = mapped_column()
    opened_by_name: Mapped[str] = mapped_column(String(200))
    first_response_due_at: Mapped[datetime]
    resolution_due_at: Mapped[datetime]
    due_at: Mapped[datetime]
    first_responded_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    first_response_breached: Mapped[bool] = mapped_column(default=False)
    resolution_breached: Mapped[bool] = mapped_column(default=False)
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
