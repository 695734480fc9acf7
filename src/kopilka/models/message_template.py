from datetime import datetime
from uuid import UUID

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class MessageTemplate(Base):
    """A program's own version of a notification's texts in one language (part → source).

    Append-only: saving makes the next version; the newest is the one in use. A kind and
    language without a row uses the shipped texts.
    """

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("program_id", "kind", "language", "version"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column()
    parts: Mapped[dict[str, str]] = mapped_column(JSONType)
    created_at: Mapped[datetime]
