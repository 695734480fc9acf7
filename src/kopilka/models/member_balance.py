from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class MemberBalance(Base):
    """Cached balance of one member in one currency.

    Always equal to the sum of the member's postings (``kopilka ledger verify`` proves it).
    The row is also the member's ledger lock: every value-moving operation takes it
    ``FOR UPDATE`` first, so operations on one member are serialised and never deadlock.
    """

    __tablename__ = "member_balances"

    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(32), primary_key=True)
    program_id: Mapped[UUID] = mapped_column(index=True)
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]
