from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class SurveyInvitation(Base):
    """A member asked to answer a survey about one occasion (``occasion``: the purchase's
    or the ticket's id, ``purchase:<id>`` / ``ticket:<id>``), once per survey and occasion.
    ``store`` and ``staff_id`` come from the occasion; ``answered_at`` once answered."""

    __tablename__ = "survey_invitations"
    __table_args__ = (
        UniqueConstraint("survey_id", "occasion"),
        Index("ix_survey_invitations_member", "member_id", "created_at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    survey_id: Mapped[UUID] = mapped_column(ForeignKey("surveys.id"))
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    occasion: Mapped[str] = mapped_column(String(100))
    purchase_id: Mapped[UUID | None] = mapped_column()
    ticket_id: Mapped[UUID | None] = mapped_column()
    store: Mapped[str | None] = mapped_column(String(100))
    staff_id: Mapped[UUID | None] = mapped_column()
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
