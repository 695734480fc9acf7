from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base

_OPEN = text("remaining > 0")


class Lot(Base):
    """Points earned together, with their own availability and expiry dates.

    ``remaining`` never goes below zero. Open available lots sum to the member's available
    balance (or to zero while that balance is negative); open pending lots to the pending one.
    ``expired`` counts the lot's points that ran out (moved to the program's ``expired``
    account), so what became of a lot is known: of its ``amount``, ``remaining`` is left,
    ``expired`` ran out and the rest was spent, taken back by a return or moved to another
    profile by a merge (``remaining + expired`` never exceeds ``amount``).
    """

    __tablename__ = "lots"
    __table_args__ = (
        Index(
            "ix_lots_member_open",
            "member_id",
            "currency",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        Index(
            "ix_lots_expiring",
            "expires_at",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        Index(
            "ix_lots_pending",
            "available_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column()
    currency: Mapped[str] = mapped_column(String(32))
    entry_id: Mapped[UUID] = mapped_column(ForeignKey("journal_entries.id"))
    source_id: Mapped[str | None] = mapped_column(String(200))
    rule_id: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expired: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16))
    earned_at: Mapped[datetime]
    available_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
