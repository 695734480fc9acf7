"""What moves when two members' profiles are merged: their coupon codes and uses."""

from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import CouponCode, CouponRedemption
from kopilka.models.base import table

codes_t = table(CouponCode)
uses_t = table(CouponRedemption)


async def reassign(conn: AsyncConnection, program_id: UUID, source: UUID, target: UUID) -> int:
    """Personal codes and past uses of ``source`` become ``target``'s; the number moved."""
    moved = 0
    for t in (codes_t, uses_t):
        result = await conn.execute(
            update(t)
            .where(t.c.program_id == program_id, t.c.member_id == source)
            .values(member_id=target)
        )
        moved += int(result.rowcount or 0)
    return moved
