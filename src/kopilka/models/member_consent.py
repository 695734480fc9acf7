from datetime import datetime
from uuid import UUID

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class MemberConsent(Base):
    """A member's consent now, per channel and purpose: ``granted``, ``pending`` (asked
    for, not yet confirmed: double opt-in) or ``withdrawn``. No row: marketing is not
    allowed, service messages are."""

    __tablename__ = "member_consents"

    member_id: Mapped[UUID] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(10), primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(40))
    text_version: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime]
