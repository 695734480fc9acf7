from datetime import date
from uuid import UUID

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class KpiTierDay(Base):
    """What the members of one tier (their tier now; '' for none) add to one day in the
    program's time zone: how many joined on it, made their first purchase ever on it, and
    how the number of active members changes at its start (``active_30``, ``active_90``).

    A member is active on a day who bought on it or on one of the 29 (89) days before it;
    each spell of activity adds 1 on its first day and takes 1 back on the day after its
    last, so the active members as of any day are the sum of the rows up to it. Joins and
    activity count members neither merged nor erased.

    Kept by the ``analytics.kpis`` consumer as the difference between what the members it
    touched added before and after (``kpi_members`` and ``kpi_member_months`` hold what they
    add), so participants, new participants and active members over any period are a sum
    over a few thousand rows whatever the number of members.
    """

    __tablename__ = "kpi_tier_days"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    joined: Mapped[int] = mapped_column(Integer)
    first_bought: Mapped[int] = mapped_column(Integer)
    active_30: Mapped[int] = mapped_column(Integer)
    active_90: Mapped[int] = mapped_column(Integer)
