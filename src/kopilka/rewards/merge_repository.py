"""What moves when two members' profiles are merged: their reward redemptions."""

from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import RewardRedemption
from kopilka.models.base import table

redemptions_t = table(RewardRedemption)


async def reassign(conn: AsyncConnection, program_id: UUID, source: UUID, target: UUID) -> int:
    t = redemptions_t
    result = await conn.execute(
        update(t)
        .where(t.c.program_id == program_id, t.c.member_id == source)
        .values(member_id=target)
    )
    return int(result.rowcount or 0)
