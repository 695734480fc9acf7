"""The queries of the RFM grid: members counted per recency and frequency score."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import MemberFact
from kopilka.models.base import table

facts_t = table(MemberFact)


@dataclass(frozen=True)
class RfmCellRow:
    recency: int
    frequency: int
    members: int
    spend: int  # lifetime net spend of the cell's members, minor units


class RfmRepository:
    async def cells(self, conn: AsyncConnection, program_id: UUID) -> list[RfmCellRow]:
        """Scored members per (recency, frequency) score; cells without members left out."""
        query = (
            select(
                facts_t.c.rfm_recency,
                facts_t.c.rfm_frequency,
                func.count(),
                func.coalesce(func.sum(facts_t.c.spend), 0),
            )
            .where(facts_t.c.program_id == program_id, facts_t.c.rfm_recency.is_not(None))
            .group_by(facts_t.c.rfm_recency, facts_t.c.rfm_frequency)
        )
        return [
            RfmCellRow(int(r), int(f), int(n), int(s)) for r, f, n, s in await conn.execute(query)
        ]

    async def scored_at(self, conn: AsyncConnection, program_id: UUID) -> datetime | None:
        """When the program's members were last scored."""
        query = select(func.max(facts_t.c.rfm_at)).where(facts_t.c.program_id == program_id)
        value: datetime | None = (await conn.execute(query)).scalar_one()
        return value


rfm_repository = RfmRepository()
