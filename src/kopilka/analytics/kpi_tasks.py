"""Rebuilding the KPIs' aggregates from the core's tables: the daily rows of the period
deleted, then every member's checks, returns, points and month masks added back one range
of members per transaction (memory stays flat however large the program), then the
purchases without a member.

The daily rows are sums: a rebuild stopped half-way leaves them partial until it is run
again (from the start), and events delivered to the consumer while a rebuild runs may be
counted twice for the days being rebuilt. Run it with the worker's ``analytics.kpis``
consumer caught up and stopped, or where nothing is being bought.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.analytics.kpi_service import REBUILD_BATCH, kpi_service
from kopilka.db import run_in_transaction
from kopilka.programs.service import ProgramContext

# After each committed batch: the members done so far.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class RebuildReport:
    batches: int


async def rebuild_program(
    engine: AsyncEngine,
    program: ProgramContext,
    *,
    since: date | None = None,
    size: int = REBUILD_BATCH,
    progress: Progress | None = None,
) -> RebuildReport:
    """Work the program's aggregates out again (the daily rows from ``since`` on; the
    month masks always in full)."""

    async def clear(conn: AsyncConnection) -> None:
        await kpi_service.rebuild_start(conn, program, since)

    await run_in_transaction(engine, clear)
    cursor: UUID | None = None
    batches = done = 0
    while True:

        async def batch(conn: AsyncConnection, cursor: UUID | None = cursor) -> UUID | None:
            return await kpi_service.rebuild_batch(conn, program, cursor, since, size)

        upto = await run_in_transaction(engine, batch)
        if upto is None:
            break
        cursor, batches, done = upto, batches + 1, done + size
        if progress is not None:
            progress(done)

    async def without_member(conn: AsyncConnection) -> None:
        await kpi_service.rebuild_without_member(conn, program, since)

    await run_in_transaction(engine, without_member)
    return RebuildReport(batches + 1)
