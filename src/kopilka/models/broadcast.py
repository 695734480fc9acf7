from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Broadcast(Base):
    """A one-off message to a list of members: the kind whose templates it uses, the
    variables they get, the channels, when to start; ``status`` scheduled | running |
    paused | done | cancelled."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_program", "program_id", "created_at", "id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType)
    channels: Mapped[list[str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(10))
    scheduled_at: Mapped[datetime]
    total: Mapped[int] = mapped_column()
    # The share of the audience held back (sent nothing) to measure the broadcast against.
    holdout_percent: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
