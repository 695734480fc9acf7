from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Double, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Store(Base):
    """A point of sale of a program: what purchases name in their ``store`` field.

    ``code`` never changes and a store is never deleted (``status`` ``closed`` ends it), so
    a code once known stays valid: the purchase path caches codes without invalidation.
    ``latitude``/``longitude`` are WGS 84 degrees (both or neither); the index on them
    serves the bounding boxes of ``GET /v1/stores/nearest``.
    """

    __tablename__ = "stores"
    __table_args__ = (
        UniqueConstraint("program_id", "code"),
        Index("ix_stores_location", "program_id", "latitude", "longitude"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    region: Mapped[str | None] = mapped_column(String(100))
    latitude: Mapped[float | None] = mapped_column(Double)
    longitude: Mapped[float | None] = mapped_column(Double)
    timezone: Mapped[str] = mapped_column(String(64))
    # {"mon": ["09:00-21:00"], …}: None when the hours are not known.
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # {"2026-12-31": ["10:00-16:00"], "2027-01-01": []}: days that override the week.
    special_hours: Mapped[dict[str, Any]] = mapped_column(JSONType, server_default=text("'{}'"))
    tags: Mapped[list[str]] = mapped_column(JSONType, server_default=text("'[]'"))
    phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8))  # open | closed (for good)
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
