from datetime import datetime
from uuid import UUID

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class Suppression(Base):
    """An address nothing more is sent to on a channel: a hard bounce, a complaint, or
    an operator's decision, with the reason kept."""

    __tablename__ = "suppressions"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    address: Mapped[str] = mapped_column(String(500), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))  # bounce, complaint, manual
    detail: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[UUID | None] = mapped_column()
    created_at: Mapped[datetime]
