"""Merging two members' profiles: the merged member's benefits the rules gave
become the survivor's."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.earning import merge_repository
from kopilka.programs.service import ProgramContext


async def reassign_member(
    conn: AsyncConnection, program: ProgramContext, source: UUID, target: UUID
) -> int:
    """``source``'s benefits the rules gave become ``target``'s; how many moved."""
    return await merge_repository.reassign(conn, program.id, source, target)
