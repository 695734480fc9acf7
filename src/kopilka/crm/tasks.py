"""Jobs over a whole program's facts.

- The daily ``crm-facts`` job moves the stored windows on (only the rows a purchase day
  left a window of) and scores RFM: set-based statements, idempotent (running it twice in
  a day gives the same facts).
- :func:`rebuild_program` works every member's facts out again from the purchase history,
  one transaction per batch of members in id order, so that memory stays flat however large
  the program, and a stopped rebuild goes on from the last batch committed (``after``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.crm.service import REBUILD_BATCH, BatchReport, RebuildReport, crm_service
from kopilka.db import reading, run_in_transaction


@dataclass(frozen=True)
class FactsJobReport:
    windows: int
    scored: int


async def daily_facts(engine: AsyncEngine, program_id: UUID, now: datetime) -> FactsJobReport:
    async def work(conn: AsyncConnection) -> FactsJobReport:
        windows = await crm_service.move_windows(conn, program_id, now)
        scored = await crm_service.score_rfm(conn, program_id, now)
        return FactsJobReport(windows, scored)

    return await run_in_transaction(engine, work)


# What a rebuild reports after each committed batch: the phase ("facts" or "rfm"), the
# members done in it so far, and the last member id done (where to go on from).
Progress = Callable[[str, int, UUID], None]


async def rebuild_program(
    engine: AsyncEngine,
    program_id: UUID,
    now: datetime,
    *,
    after: UUID | None = None,
    size: int = REBUILD_BATCH,
    progress: Progress | None = None,
) -> RebuildReport:
    """Buckets and facts of every member after ``after`` (all: None), then RFM scores for
    the whole program; each batch is committed before the next starts."""
    days = facts = scored = done = 0
    cursor = after
    while True:

        async def batch(conn: AsyncConnection, cursor: UUID | None = cursor) -> BatchReport:
            return await crm_service.rebuild_batch(conn, program_id, cursor, now, size)

        report = await run_in_transaction(engine, batch)
        if report.upto is None:
            break
        days, facts, done, cursor = (
            days + report.days,
            facts + report.facts,
            done + size,
            report.upto,
        )
        if progress is not None:
            progress("facts", done, report.upto)
    # Scores compare members with each other: the cut-offs come from the whole program, and
    # then each batch is a plain update against them.
    async with reading(engine) as conn:
        cutoffs = await crm_service.rfm_cutoffs(conn, program_id)
    cursor, done = None, 0
    while True:

        async def score(conn: AsyncConnection, cursor: UUID | None = cursor) -> BatchReport:
            return await crm_service.score_rfm_batch(conn, program_id, cutoffs, cursor, now, size)

        report = await run_in_transaction(engine, score)
        if report.upto is None:
            break
        scored, done, cursor = scored + report.facts, done + size, report.upto
        if progress is not None:
            progress("rfm", done, report.upto)
    return RebuildReport(days, facts, scored)
