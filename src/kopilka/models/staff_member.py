from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class StaffMember(Base):
    """A person of the business who signs in to the console: one program, one role, and
    optionally some stores only. The password is kept as an Argon2id hash."""

    __tablename__ = "staff"
    __table_args__ = (Index("ix_staff_program_email", "program_id", "email", unique=True),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column(ForeignKey("programs.id"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    # Store codes the member of staff acts for; NULL: every store.
    stores: Mapped[list[str] | None] = mapped_column(JSONType)
    password_hash: Mapped[str] = mapped_column(String(200))
    # Base32 secret of the authenticator app (RFC 6238); enabled once a code was confirmed.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled: Mapped[bool] = mapped_column(default=False)
    # The last time step whose code was accepted: a code seen once is never taken again.
    totp_last_step: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(10), default="active")
    failed_sign_ins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_sign_in_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
