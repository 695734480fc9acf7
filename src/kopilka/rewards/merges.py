"""Merging two members' profiles: the merged member's reward redemptions
become the survivor's."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.programs.service import ProgramContext
from kopilka.rewards import merge_repository


async def reassign_member(
    conn: AsyncConnection, program: ProgramContext, source: UUID, target: UUID
) -> int:
    """``source``'s reward redemptions become ``target``'s; how many moved."""
    return await merge_repository.reassign(conn, program.id, source, target)
