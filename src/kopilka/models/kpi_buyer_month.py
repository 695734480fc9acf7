from uuid import UUID

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class KpiBuyerMonth(Base):
    """Members (on their tier now; '' for none) who bought in calendar month ``month``
    (``year × 12 + month − 1``, the program's time zone), by the month of their purchase
    before it (``previous``; −1: none) and after it (``next``; ``NO_NEXT``: none) and
    whether they bought twice or more in it (``multi``).

    The distinct buyers of months ``a..b`` are then the members of rows with ``a ≤ month ≤
    b`` and ``previous < a`` (each buyer's first month in the range), and the buyers who
    bought only once in them those of such rows with ``next > b`` and not ``multi``: sums
    over at most months² rows, whatever the number of members. Kept by the
    ``analytics.kpis`` consumer as ``kpi_tier_days`` is.
    """

    __tablename__ = "kpi_buyer_months"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    previous: Mapped[int] = mapped_column(Integer, primary_key=True)
    next: Mapped[int] = mapped_column(Integer, primary_key=True)
    multi: Mapped[bool] = mapped_column(primary_key=True)
    members: Mapped[int] = mapped_column(Integer)
