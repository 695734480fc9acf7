from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class MemberFact(Base):
    """Facts derived from a member's purchase history (``docs/crm-facts.md``): kept by the
    ``crm.facts`` consumer and rebuilt set-wise by ``kopilka crm rebuild-facts``.

    Spend is net of returns; a purchase returned in full does not count. The window figures
    (``purchases_30d`` … ``spend_12m``: the last 30, 90 and 365 days, today included) are
    worked out for ``windows_on`` and stay exact until ``windows_until``, the first day on
    which one of the member's purchase days leaves a window (NULL: there is none in them);
    the daily job works out again the rows whose day has come. Segments read them when no
    row of the program is past its day; the facts API works its figures out at read time.
    """

    __tablename__ = "member_facts"
    __table_args__ = (
        Index("ix_member_facts_program_last", "program_id", "last_purchase_at"),
        Index("ix_member_facts_program_rfm", "program_id", "rfm_group"),
        # Range predicates on the windows' spend read these alone (member_id is in the key
        # so that the semi-joins that follow need no visit to the table).
        Index("ix_member_facts_program_spend_30d", "program_id", "spend_30d", "member_id"),
        Index("ix_member_facts_program_spend_90d", "program_id", "spend_90d", "member_id"),
        Index("ix_member_facts_program_spend_12m", "program_id", "spend_12m", "member_id"),
        # "Is any row of the program past its day?" is one probe of this index.
        Index("ix_member_facts_program_windows_until", "program_id", "windows_until"),
    )

    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    first_purchase_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    purchases: Mapped[int] = mapped_column(Integer)
    spend: Mapped[int] = mapped_column(BigInteger)
    returns: Mapped[int] = mapped_column(Integer)
    returned: Mapped[int] = mapped_column(BigInteger)
    purchases_30d: Mapped[int] = mapped_column(Integer)
    spend_30d: Mapped[int] = mapped_column(BigInteger)
    purchases_90d: Mapped[int] = mapped_column(Integer)
    spend_90d: Mapped[int] = mapped_column(BigInteger)
    purchases_12m: Mapped[int] = mapped_column(Integer)
    spend_12m: Mapped[int] = mapped_column(BigInteger)
    windows_on: Mapped[date]
    windows_until: Mapped[date | None]
    # Top three by spend, best first: [[key, spend], ...].
    categories: Mapped[list[Any]] = mapped_column(JSONType)
    stores: Mapped[list[Any]] = mapped_column(JSONType)
    rfm_recency: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_frequency: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_monetary: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_group: Mapped[str | None] = mapped_column(String(32))
    rfm_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
