from datetime import date
from uuid import UUID

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class KpiMemberMonth(Base):
    """The calendar months (in the program's time zone) in which a member bought, within
    one era of 60 months: the distinct-member KPIs (buyers, repeat buyers, retention by
    cohort) read one row per member instead of their purchases.

    Month ``m`` (``year × 12 + month − 1``) is bit ``m mod 60`` of era ``m div 60``:
    ``active`` has the bits of the months with a purchase, ``multi`` those with two or
    more. ``first_month`` and ``first_day`` are the member's first purchase ever (the same
    on each of the member's rows), ``tier`` their tier now. Worked out again from the
    member's purchases whenever an event touches them, so idempotent by construction. The
    index covers the KPI scans (one era of one program, per tier) without visiting the
    table.
    """

    __tablename__ = "kpi_member_months"
    __table_args__ = (
        Index(
            "ix_kpi_member_months_program_era",
            "program_id",
            "era",
            "tier",
            "first_month",
            "active",
            "multi",
        ),
    )

    member_id: Mapped[UUID] = mapped_column(primary_key=True)
    era: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    active: Mapped[int] = mapped_column(BigInteger)
    multi: Mapped[int] = mapped_column(BigInteger)
    first_month: Mapped[int] = mapped_column(Integer)
    first_day: Mapped[date]
    # The member's tier now ('' for none), as in ``kpi_members``: buyers per tier.
    tier: Mapped[str] = mapped_column(String(32))
