from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class MemberSession(Base):
    """A member signed in to the app; only a SHA-256 hash of its token is stored."""

    __tablename__ = "member_sessions"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID]
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    user_agent: Mapped[str | None] = mapped_column(String(300))
