"""Merging two members' profiles: the merged member's personal coupon codes and past uses
become the survivor's."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons import merge_repository
from kopilka.programs.service import ProgramContext


async def reassign_member(
    conn: AsyncConnection, program: ProgramContext, source: UUID, target: UUID
) -> int:
    """``source``'s personal coupon codes and past uses become ``target``'s; how many moved."""
    return await merge_repository.reassign(conn, program.id, source, target)
