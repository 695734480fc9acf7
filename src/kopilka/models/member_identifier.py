from uuid import UUID

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, BigIntPK


class MemberIdentifier(Base):
    """One way to find a member: card, phone (E.164), e-mail (normalised) or external id.

    The unique constraint makes a duplicate identifier impossible even under concurrent
    registrations.
    """

    __tablename__ = "member_identifiers"
    __table_args__ = (UniqueConstraint("program_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
