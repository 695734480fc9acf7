from datetime import date
from uuid import UUID

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class KpiPointDay(Base):
    """Points of one currency moved on one day (in the program's time zone), by what moved
    them: the daily aggregate of the points KPIs (``docs/analytics.md``).

    ``issued``: credited by the rules (and opening balances brought over); ``reversed``:
    taken back by returns; ``redeemed``: spent (one step or a captured hold); ``refunded``:
    spent points given back; ``expired``; ``adjusted``: manual credits less debits. Kept
    from the points events by the ``analytics.kpis`` consumer, rebuilt from the ledger's
    postings on the program's accounts.
    """

    __tablename__ = "kpi_point_days"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(32), primary_key=True)
    issued: Mapped[int] = mapped_column(BigInteger)
    reversed: Mapped[int] = mapped_column(BigInteger)
    redeemed: Mapped[int] = mapped_column(BigInteger)
    refunded: Mapped[int] = mapped_column(BigInteger)
    expired: Mapped[int] = mapped_column(BigInteger)
    adjusted: Mapped[int] = mapped_column(BigInteger)
