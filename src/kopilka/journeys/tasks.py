"""Journeys' scheduled jobs: ``journeys-advance`` (frequent, per program) takes the steps
of the runs whose wait is over, a batch per transaction, until none is due;
``journeys-entries`` (daily) enters the members whose date or schedule comes."""

from datetime import date, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.journeys.entries import DailyReport, journey_entries
from kopilka.journeys.runs import DUE_BATCH, AdvanceReport, journey_runner
from kopilka.programs.service import program_service


async def advance_program(
    engine: AsyncEngine, program_id: UUID, now: datetime, batch: int = DUE_BATCH
) -> AdvanceReport:
    total = AdvanceReport()
    while True:

        async def work(conn: AsyncConnection) -> AdvanceReport:
            return await journey_runner.advance(conn, program_id, now, batch)

        report = await run_in_transaction(engine, work)
        total.runs += report.runs
        total.steps += report.steps
        total.failed += report.failed
        if report.runs < batch:
            return total


async def enter_daily(
    engine: AsyncEngine, program_id: UUID, now: datetime, today: date
) -> DailyReport:
    """The daily ``journeys-entries`` job: members whose date or schedule comes today
    enter (run again the same day, it starts nothing twice)."""

    async def work(conn: AsyncConnection) -> DailyReport:
        program = await program_service.get(conn, program_id)
        return await journey_entries.daily(conn, program, today, now)

    return await run_in_transaction(engine, work)
