"""The daily retention job: members' messages and interactions older than the program's
retention periods deleted, a chunk per transaction."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading, run_in_transaction
from kopilka.messaging import privacy as messaging_privacy
from kopilka.programs.service import program_service
from kopilka.support import service as support

CHUNK = 1000
Chunk = Callable[[AsyncConnection], Awaitable[int]]


@dataclass
class Purged:
    messages: int = 0
    interactions: int = 0


async def purge_expired(engine: AsyncEngine, program_id: UUID, now: datetime) -> Purged:
    """Delete what the program's ``retention`` says is kept no longer; resumable (a run cut
    short leaves only older rows for the next)."""
    async with reading(engine) as conn:
        program = await program_service.get(conn, program_id)
    retention = program.settings.retention
    purged = Purged()
    if retention.messages_days is not None:
        cutoff = now - timedelta(days=retention.messages_days)
        purged.messages = await _chunks(
            engine,
            lambda conn: messaging_privacy.purge_messages(conn, program, cutoff, CHUNK),
        )
    if retention.interactions_days is not None:
        cutoff = now - timedelta(days=retention.interactions_days)
        purged.interactions = await _chunks(
            engine, lambda conn: support.purge_interactions(conn, program, cutoff, CHUNK)
        )
    return purged


async def _chunks(engine: AsyncEngine, chunk: Chunk) -> int:
    total = 0
    while True:
        done = await run_in_transaction(engine, chunk)
        total += done
        if done < CHUNK:
            return total
