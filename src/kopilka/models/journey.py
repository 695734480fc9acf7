from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Journey(Base):
    """A program's journey: its key, the version in force (None until first published),
    the draft being edited (None: none), and ``status`` draft | active | paused | archived
    (``docs/journeys.md``)."""

    __tablename__ = "journeys"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int | None]
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
