"""Recommendations' scheduled job: the item-to-item model rebuilt daily per program.

It reads the co-purchases and fits on a read-only connection (one snapshot of the history,
no write lock held while the model is fitted), then replaces the program's neighbours and
popularity in one short transaction, as the lifetime models' refit does.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading, run_in_transaction
from kopilka.programs.service import program_service
from kopilka.recommendations.schemas import BuildOut
from kopilka.recommendations.service import recommendation_service


def build_line(build: BuildOut) -> str:
    return (
        f"{build.items} items from {build.members} members,"
        f" {build.neighbours} neighbours stored in {build.seconds:.2f} s"
    )


async def build_program(engine: AsyncEngine, program_id: UUID, now: datetime) -> BuildOut:
    """Build the program's model on its history up to ``now`` and store it."""
    async with reading(engine, snapshot=True) as conn:
        program = await program_service.get(conn, program_id)
        prepared = await recommendation_service.prepare(conn, program, now)

    async def store(conn: AsyncConnection) -> BuildOut:
        return await recommendation_service.store(conn, prepared)

    return await run_in_transaction(engine, store)
