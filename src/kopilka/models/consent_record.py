from datetime import datetime
from uuid import UUID

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, BigIntPK


class ConsentRecord(Base):
    """Every change of a member's consent, kept: what, when, from where (``source``: api,
    registration, profile, preferences, unsubscribe, confirmation …) and the version of the
    consent text the member saw."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_records_member", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column()
    channel: Mapped[str] = mapped_column(String(10))
    purpose: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(40))
    text_version: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime]
