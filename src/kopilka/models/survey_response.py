from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class SurveyResponse(Base):
    """A member's answers to one version of a survey. ``score`` is the answer to the
    survey's scored question (its first ``nps`` or ``csat`` question), kept in a column for
    the scores per store, month and staff member. One answer per invitation."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("invitation_id"),
        Index("ix_survey_responses_survey", "survey_id", "answered_at", "id"),
        Index("ix_survey_responses_member", "member_id", "answered_at", "id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    survey_id: Mapped[UUID] = mapped_column(ForeignKey("surveys.id"))
    version: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    invitation_id: Mapped[UUID | None] = mapped_column()
    purchase_id: Mapped[UUID | None] = mapped_column()
    ticket_id: Mapped[UUID | None] = mapped_column()
    store: Mapped[str | None] = mapped_column(String(100))
    staff_id: Mapped[UUID | None] = mapped_column()
    score: Mapped[int | None] = mapped_column(Integer)
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    channel: Mapped[str] = mapped_column(String(20))
    answered_at: Mapped[datetime]
