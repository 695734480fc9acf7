from datetime import date
from uuid import UUID

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class KpiDay(Base):
    """The program's checks of one day (in the program's time zone), per store, channel,
    tier and whether a member made them: the daily aggregate the KPIs sum
    (``docs/analytics.md``).

    Kept by the ``analytics.kpis`` consumer, which adds each delivered batch's figures to
    the rows of its keys (exactly once: its writes commit with its checkpoint), and rebuilt
    from the purchases by ``kopilka analytics rebuild-kpis``. ``store`` is '' for a purchase
    without one; ``tier`` is the member's tier after the purchase ('' for none, and for
    purchases without a member). Money in minor units; ``revenue`` is gross (what the
    checks totalled), returns are counted on the day of the return, on the row of the
    purchase they return. ``claimed``: checks made without a card and claimed by a member
    since (counted in the member's row).
    """

    __tablename__ = "kpi_days"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    store: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    member: Mapped[bool] = mapped_column(primary_key=True)
    purchases: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    points_spent: Mapped[int] = mapped_column(BigInteger)
    paid_with_points: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer)
    returns: Mapped[int] = mapped_column(Integer)
    returned: Mapped[int] = mapped_column(BigInteger)
