from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class MemberBenefit(Base):
    """Something a rule gave a member besides points: a coupon or reward for later, a
    personal boost for the next purchase, free delivery or a free sample on the purchase
    itself (kept as a record of what was granted) — or a personal offer granted by a
    journey or by staff (``grant_key`` set: the grant's idempotency key, unique per member).

    ``status`` is stored as ``active`` or ``used``; an active row past ``expires_at`` reads
    as ``expired`` (the status is worked out when read, see docs/benefits.md)."""

    __tablename__ = "member_benefits"
    __table_args__ = (
        Index("ix_member_benefits_member_status", "member_id", "status"),
        UniqueConstraint("program_id", "member_id", "grant_key"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    rule_id: Mapped[str] = mapped_column(String(100))
    program_version: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))  # active | used | expired
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(200))
    grant_key: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
