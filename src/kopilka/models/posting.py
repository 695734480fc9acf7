from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, BigIntPK


class Posting(Base):
    """One leg of a journal entry: ``amount`` (signed) on ``account`` in ``currency``.

    Member accounts are ``available``, ``pending`` and ``held``; program accounts are
    ``issued``, ``redeemed``, ``expired`` and ``adjustments``. Every posting carries the member
    it concerns, program legs included, so the program's accounts are aggregates over
    postings and never a hot row.
    """

    __tablename__ = "postings"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    entry_id: Mapped[UUID] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    # No indexes beyond the entry: every purchase writes two postings, and the only readers
    # that filter on these columns (ledger verify, reports) aggregate whole programs anyway.
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column()
    account: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    rule_id: Mapped[str | None] = mapped_column(String(100))
