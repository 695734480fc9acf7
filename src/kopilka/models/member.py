from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Member(Base):
    """A member's profile: personal data, kept apart from the ledger tables."""

    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_program_created", "program_id", "created_at"),
        Index("ix_members_program_match_name", "program_id", "match_name"),
        Index("ix_members_program_match_email", "program_id", "match_email"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column(ForeignKey("programs.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    birthday: Mapped[date | None]
    language: Mapped[str | None] = mapped_column(String(16))
    # The customer 360's profile fields (docs/crm.md).
    gender: Mapped[str | None] = mapped_column(String(8))
    city: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    preferred_store: Mapped[str | None] = mapped_column(String(64))
    preferred_channel: Mapped[str | None] = mapped_column(String(8))
    consents: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(500))
    # The code a friend shared, as given at sign-up; the referral programme acts on it.
    referral_code: Mapped[str | None] = mapped_column(String(64))
    # Member state the rules read and write: tags (a list) and custom attributes.
    tags: Mapped[list[str]] = mapped_column(JSONType, server_default=text("'[]'"))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, server_default=text("'{}'"))
    # Keys that find likely duplicates (docs/crm.md): the name folded with the birthday, and
    # the e-mail without what mail providers ignore (dots, +tags). Kept on every write.
    match_name: Mapped[str | None] = mapped_column(String(300))
    match_email: Mapped[str | None] = mapped_column(String(320))
    # A profile merged into another: the survivor (its status is ``merged``).
    merged_into: Mapped[UUID | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
