"""Scheduled ledger jobs: expire overdue lots, release pending points, drop stale holds.

Each job works in chunks, one transaction per chunk, and can be stopped and run again at
any time: what is done stays done (an expired lot is empty, a released lot available).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.errors import Conflict
from kopilka.kit.clock import clock
from kopilka.ledger.service import ledger_service
from kopilka.programs.service import program_service

CHUNK = 200


@dataclass
class JobReport:
    members: int = 0
    amount: int = 0


async def _chunks(
    engine: AsyncEngine,
    program_id: UUID,
    due: Callable[[AsyncConnection, UUID], Awaitable[list[UUID]]],
    act: Callable[[AsyncConnection, UUID], Awaitable[int]],
) -> JobReport:
    report = JobReport()
    while True:

        async def one_chunk(conn: AsyncConnection) -> int:
            ids = await due(conn, program_id)
            for member_id in sorted(ids):
                report.amount += await act(conn, member_id)
            return len(ids)

        done = await run_in_transaction(engine, one_chunk)
        report.members += done
        if done < CHUNK:
            return report


async def expire_points(engine: AsyncEngine, program_id: UUID, as_of: datetime) -> JobReport:
    async def due(conn: AsyncConnection, pid: UUID) -> list[UUID]:
        return await ledger_service.repository.members_with_expired_lots(conn, pid, as_of, CHUNK)

    async def act(conn: AsyncConnection, member_id: UUID) -> int:
        program = await program_service.get(conn, program_id)
        return await ledger_service.expire_member(conn, program, member_id, as_of, clock.now())

    return await _chunks(engine, program_id, due, act)


async def release_pending(engine: AsyncEngine, program_id: UUID, as_of: datetime) -> JobReport:
    async def due(conn: AsyncConnection, pid: UUID) -> list[UUID]:
        return await ledger_service.repository.members_with_due_pending(conn, pid, as_of, CHUNK)

    async def act(conn: AsyncConnection, member_id: UUID) -> int:
        program = await program_service.get(conn, program_id)
        return await ledger_service.release_member(conn, program, member_id, as_of, clock.now())

    return await _chunks(engine, program_id, due, act)


async def release_holds(engine: AsyncEngine, program_id: UUID, as_of: datetime) -> JobReport:
    """Void holds nobody captured before ``hold_expires_at`` (status ``expired``)."""

    async def due(conn: AsyncConnection, pid: UUID) -> list[UUID]:
        return await ledger_service.repository.due_holds(conn, pid, as_of, CHUNK)

    async def act(conn: AsyncConnection, redemption_id: UUID) -> int:
        program = await program_service.get(conn, program_id)
        try:
            view = await ledger_service.settle_hold(
                conn,
                program,
                redemption_id,
                capture_amount=None,
                now=clock.now(),
                outcome="expired",
            )
        except Conflict:
            return 0  # captured or voided at the till since we looked: nothing to release
        return int(view.row["amount"])

    return await _chunks(engine, program_id, due, act)
