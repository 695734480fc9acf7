from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class JourneyRun(Base):
    """One member's way through one version of a journey: the step it is at, when it is
    due (``wake_at``), the event it waits for, ``status`` active | waiting | held_out |
    converted | exited. ``entry_key`` (the entering event) makes entering idempotent;
    ``steps_done`` numbers the steps taken, so each step's effect has a key of its own."""

    __tablename__ = "journey_runs"
    __table_args__ = (
        UniqueConstraint("journey_id", "member_id", "entry_key"),
        Index(
            "ix_journey_runs_due",
            "wake_at",
            postgresql_where=text("status IN ('active', 'waiting')"),
            sqlite_where=text("status IN ('active', 'waiting')"),
        ),
        Index("ix_journey_runs_member", "member_id", "status"),
        Index("ix_journey_runs_journey", "journey_id", "status"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    journey_id: Mapped[UUID] = mapped_column(ForeignKey("journeys.id"))
    version: Mapped[int]
    member_id: Mapped[UUID] = mapped_column()
    entry_key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(64))
    steps_done: Mapped[int] = mapped_column(default=0)
    wake_at: Mapped[datetime | None]
    waiting_for: Mapped[str | None] = mapped_column(String(64))
    entered_at: Mapped[datetime]
    goal_until: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
