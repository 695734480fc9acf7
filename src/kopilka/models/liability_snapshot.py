from datetime import date, datetime
from uuid import UUID

from sqlalchemy import BigInteger, Double, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class LiabilitySnapshot(Base):
    """One currency's liability on one day of a program (its local date): the figures of
    the liability report as worked out at ``taken_at`` (``docs/analytics.md``).

    Written by the daily ``liability-snapshot`` job (or ``kopilka analytics liability
    --snapshot``); taking it again the same day replaces the day's row, so the key is the
    day, not the instant. The KPIs' totals read the latest row instead of every lot
    (``liability_service.kpi_totals``), and the rows form the history finance books month
    ends from. Points and money are integers (money in minor units of the program's money
    currency); ``outstanding_value`` and ``liability_after_breakage`` are null for a
    currency with no known value, ``breakage_rate`` when no earning month is mature yet.
    """

    __tablename__ = "liability_snapshots"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    taken_at: Mapped[datetime]
    outstanding_points: Mapped[int] = mapped_column(BigInteger)
    pending_points: Mapped[int] = mapped_column(BigInteger)
    overdue_points: Mapped[int] = mapped_column(BigInteger)
    outstanding_value: Mapped[int | None] = mapped_column(BigInteger)
    breakage_rate: Mapped[float | None] = mapped_column(Double)
    liability_after_breakage: Mapped[int | None] = mapped_column(BigInteger)
