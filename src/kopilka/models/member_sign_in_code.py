from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class MemberSignInCode(Base):
    """A one-time code sent to a member to sign in to the app: only its hash is stored, it
    lasts minutes, takes a few wrong tries and is used once."""

    __tablename__ = "member_sign_in_codes"
    __table_args__ = (Index("ix_member_sign_in_codes_member", "member_id", "created_at"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID]
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    channel: Mapped[str] = mapped_column(String(10))  # email | sms
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int]
    used_at: Mapped[datetime | None]
    # What entering the code does besides signing in (``memberaccess.domain.OnUse``): the
    # marketing consents ticked at sign-up, or the new e-mail or phone it confirms.
    on_use: Mapped[Any | None] = mapped_column(JSONType)
