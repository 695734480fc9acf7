from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class WebhookEndpoint(Base):
    """A URL of one program that receives its domain events, signed with ``secret``.

    ``event_types`` filters what it gets (``*``, a type, or a prefix such as ``points.*``).
    ``failing_since`` is the first failed attempt since the last success: an endpoint still
    failing after the configured time is disabled (``disabled_reason`` says why).
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column(index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[Any]] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column()
    secret: Mapped[str] = mapped_column(String(100))
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
