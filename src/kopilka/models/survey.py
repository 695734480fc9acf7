from datetime import datetime
from uuid import UUID

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class Survey(Base):
    """A survey of a program: its questions are in ``survey_versions`` (``version`` is the
    one in use). ``trigger``: when members are invited (``manual``, ``purchase``,
    ``ticket_resolved``), ``sample_percent`` of the occasions, at most once per
    ``cooldown_days`` per member."""

    __tablename__ = "surveys"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(20))
    sample_percent: Mapped[int] = mapped_column(Integer)
    cooldown_days: Mapped[int] = mapped_column(Integer)
    expires_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))  # active | archived
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
