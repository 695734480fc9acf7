from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class IdempotencyRecord(Base):
    """The stored answer to a value-moving request, replayed for a retry with the same key."""

    __tablename__ = "idempotency_records"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime]
