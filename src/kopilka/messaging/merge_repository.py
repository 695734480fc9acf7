"""What moves when two members' profiles are merged: their browsers' push subscriptions."""

from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import PushSubscriptionRow
from kopilka.models.base import table

subscriptions_t = table(PushSubscriptionRow)


async def reassign(conn: AsyncConnection, program_id: UUID, source: UUID, target: UUID) -> int:
    t = subscriptions_t
    result = await conn.execute(
        update(t)
        .where(t.c.program_id == program_id, t.c.member_id == source)
        .values(member_id=target)
    )
    return int(result.rowcount or 0)
