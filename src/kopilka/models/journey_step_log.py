from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class JourneyStepLog(Base):
    """A step a run took: which, with what outcome (``sent``, ``skipped``, ``credited``,
    ``issued``, ``tagged``, ``then``/``else``, ``waiting``, ``timed_out``, ``exited``) and
    what it made; the per-step counts of a journey are read from here."""

    __tablename__ = "journey_step_logs"
    __table_args__ = (Index("ix_journey_step_logs_journey", "journey_id", "step"),)

    run_id: Mapped[UUID] = mapped_column(ForeignKey("journey_runs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[UUID] = mapped_column()
    step: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    at: Mapped[datetime]
