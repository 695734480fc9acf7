from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class AuditEntry(Base):
    """One change made by a person or a machine (or one read of a member's personal data by
    staff): who, what, when, before and after. Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_program_at", "program_id", "at", "id"),
        Index("ix_audit_log_subject", "program_id", "subject_type", "subject_id", "at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID]
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(8))
    actor_id: Mapped[UUID | None]
    actor_name: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(120))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str | None] = mapped_column(String(200))
    before: Mapped[Any | None] = mapped_column(JSONType)
    after: Mapped[Any | None] = mapped_column(JSONType)
