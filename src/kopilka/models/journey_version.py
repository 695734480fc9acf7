from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class JourneyVersion(Base):
    """A published version of a journey's document; runs keep the version they entered
    on, so editing a published journey never changes the path of members in flight."""

    __tablename__ = "journey_versions"

    journey_id: Mapped[UUID] = mapped_column(ForeignKey("journeys.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    published_at: Mapped[datetime]
