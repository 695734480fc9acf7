from datetime import datetime
from uuid import UUID

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class KpiMember(Base):
    """What the KPIs count of each member, in one row: when they joined, whether they are
    gone (merged into another profile or erased), their tier now ('' for none: the entry
    tier), their last purchase that was not returned in full and the days they bought on.

    Worked out again from the members, their tiers and purchases whenever an event touches
    the member (``analytics.kpis``), so idempotent by construction; rebuilt by ``kopilka
    analytics rebuild-kpis``. Participants, new participants and active members per tier
    are then one pass over the index, which holds every column they read.
    """

    __tablename__ = "kpi_members"
    __table_args__ = (
        Index(
            "ix_kpi_members_program", "program_id", "gone", "tier", "joined_at", "last_purchase_at"
        ),
    )

    member_id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    gone: Mapped[bool]
    tier: Mapped[str] = mapped_column(String(32))
    joined_at: Mapped[datetime]
    last_purchase_at: Mapped[datetime | None]
    # The member's local days with a purchase not returned in full, as day numbers (days
    # since 1970-01-01) separated by commas, in no set order: their spells of activity,
    # which ``kpi_tier_days`` adds up, are worked out from them.
    days: Mapped[str] = mapped_column(Text, default="", server_default="")
