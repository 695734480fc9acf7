from datetime import date
from uuid import UUID

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class MemberDay(Base):
    """A member's purchases and net spend on one day (UTC), the buckets that windowed
    facts and segment predicates ("spend in the last 90 days") sum.

    A return lowers the spend of the day of the purchase it returns; a purchase returned in
    full is not counted. The key alone is indexed: a member's days are one range of it (the
    consumer, the daily job, a page's per-member sums), and an index by day would make every
    bucket written land on a random page of it (it tripled the cost of a rebuild); a window
    that is not stored, summed for a whole program, reads the table once.
    """

    __tablename__ = "member_days"

    member_id: Mapped[UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    purchases: Mapped[int] = mapped_column(Integer)
    spend: Mapped[int] = mapped_column(BigInteger)
