from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType

NOTE_LENGTH = 500


class ProgramVersion(Base):
    """One version of a program's settings document: the draft being edited (``version`` is
    NULL) or a published version, numbered 1, 2, 3 … per program.

    Published rows are never updated or deleted: a rollback publishes an old document again
    under a new number, so the history only grows. The partial unique index allows one draft
    per program, even under concurrent edits.
    """

    __tablename__ = "program_versions"
    __table_args__ = (
        UniqueConstraint("program_id", "version"),
        Index(
            "ix_program_versions_one_draft",
            "program_id",
            unique=True,
            postgresql_where=text("status = 'draft'"),
            sqlite_where=text("status = 'draft'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column(ForeignKey("programs.id"))
    version: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16))  # draft | published
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(String(NOTE_LENGTH))
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
