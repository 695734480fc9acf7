from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class MessagingSetting(Base):
    """A program's messaging settings (a validated document) and the secret that signs the
    links its messages carry (unsubscribe, preferences, clicks): made once, never shown."""

    __tablename__ = "messaging_settings"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    link_secret: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]
