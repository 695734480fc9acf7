from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class JournalEntry(Base):
    """One ledger movement; its postings sum to zero per currency. Never updated or deleted."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_member_created", "member_id", "created_at"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(500))
    reference_type: Mapped[str | None] = mapped_column(String(32))
    reference_id: Mapped[str | None] = mapped_column(String(200))
    program_version: Mapped[int | None]
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]
