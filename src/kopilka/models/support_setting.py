from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class SupportSetting(Base):
    """A program's support settings (ticket categories, SLA targets per priority, the
    reply address): one document per program; a program without a row has the defaults."""

    __tablename__ = "support_settings"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime]
