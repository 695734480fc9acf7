"""What moves when two members' profiles are merged: the benefits rules gave them."""

from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import MemberBenefit
from kopilka.models.base import table

benefits_t = table(MemberBenefit)


async def reassign(conn: AsyncConnection, program_id: UUID, source: UUID, target: UUID) -> int:
    t = benefits_t
    result = await conn.execute(
        update(t)
        .where(t.c.program_id == program_id, t.c.member_id == source)
        .values(member_id=target)
    )
    return int(result.rowcount or 0)
