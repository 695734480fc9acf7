from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class Interaction(Base):
    """A contact with a member that staff or an integration logged: a call, an e-mail, a
    chat, a visit or a note, with its outcome. ``logged_by_*``: the principal that logged
    it (the API key or staff session, the staff member, the name shown)."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_member", "member_id", "occurred_at", "id"),
        Index("ix_interactions_program", "program_id", "occurred_at", "id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(10))  # call | email | chat | visit | note
    direction: Mapped[str | None] = mapped_column(String(10))  # inbound | outbound
    summary: Mapped[str] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_note: Mapped[str | None] = mapped_column(String(300))
    store: Mapped[str | None] = mapped_column(String(100))
    purchase_id: Mapped[UUID | None] = mapped_column()
    ticket_id: Mapped[UUID | None] = mapped_column()
    logged_by_key: Mapped[UUID] = mapped_column()
    logged_by_staff: Mapped[UUID | None] = mapped_column()
    logged_by_name: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]
