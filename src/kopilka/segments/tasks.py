"""The scheduled full refresh of every dynamic segment of a program, one transaction per
segment: time-based predicates change with no event."""

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading, run_in_transaction
from kopilka.kit.clock import clock
from kopilka.programs.service import program_service
from kopilka.segments.schemas import RefreshResult
from kopilka.segments.service import segment_service


@dataclass
class RefreshReport:
    segments: int = 0
    entered: int = 0
    left: int = 0


async def refresh_segments(engine: AsyncEngine, program_id: UUID) -> RefreshReport:
    async with reading(engine) as conn:
        program = await program_service.get(conn, program_id)
        keys = [s.key for s in await segment_service.listing(conn, program, limit=10_000)]
    report = RefreshReport()
    for key in keys:

        async def one(conn: AsyncConnection, key: str = key) -> RefreshResult | None:
            program = await program_service.get(conn, program_id)
            segment = await segment_service.get(conn, program, key)
            if segment.kind != "dynamic":
                return None
            return await segment_service.refresh(conn, program, key, clock.now())

        result = await run_in_transaction(engine, one)
        if result is not None:
            report.segments += 1
            report.entered += result.entered
            report.left += result.left
    return report
