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
from kopilka.ledger.redemptions import points_redemption_service
from kopilka.ledger.service import ledger_service
from kopilka.programs.service import ProgramContext, program_service

CHUNK = 200


@dataclass
class JobReport:
    members: int = 0
    amount: int = 0


Due = Callable[[AsyncConnection, ProgramContext, datetime], Awaitable[list[UUID]]]
Act = Callable[[AsyncConnection, ProgramContext, list[UUID], datetime], Awaitable[int]]


@dataclass(frozen=True)
class Job:
    """What is due (up to ``CHUNK`` ids, in member order) and what to do with them, inside
    one transaction; ``act`` returns the points it moved."""

    due: Due
    act: Act


async def run_chunk(
    conn: AsyncConnection, job: Job, program: ProgramContext, as_of: datetime
) -> JobReport:
    """One chunk of ``job`` in the caller's transaction."""
    # ``due`` gives items in member order: members are locked in that order.
    items = await job.due(conn, program, as_of)
    if not items:
        return JobReport()
    return JobReport(len(items), await job.act(conn, program, items, as_of))


async def run_job(engine: AsyncEngine, job: Job, program_id: UUID, as_of: datetime) -> JobReport:
    """Every chunk of ``job``, one transaction each, until nothing is due."""
    total = JobReport()
    while True:

        async def one_chunk(conn: AsyncConnection) -> JobReport:
            program = await program_service.get(conn, program_id)
            return await run_chunk(conn, job, program, as_of)

        # Counted after the commit, so a retried chunk is not counted twice.
        chunk = await run_in_transaction(engine, one_chunk)
        total.members += chunk.members
        total.amount += chunk.amount
        if chunk.members < CHUNK:
            return total


async def _expired(conn: AsyncConnection, program: ProgramContext, as_of: datetime) -> list[UUID]:
    return await ledger_service.repository.members_with_expired_lots(conn, program.id, as_of, CHUNK)


async def _expire(
    conn: AsyncConnection, program: ProgramContext, member_ids: list[UUID], as_of: datetime
) -> int:
    return await ledger_service.expire_members(conn, program, member_ids, as_of, clock.now())


async def _releasable(
    conn: AsyncConnection, program: ProgramContext, as_of: datetime
) -> list[UUID]:
    return await ledger_service.repository.members_with_due_pending(conn, program.id, as_of, CHUNK)


async def _release(
    conn: AsyncConnection, program: ProgramContext, member_ids: list[UUID], as_of: datetime
) -> int:
    return await ledger_service.release_members(conn, program, member_ids, as_of, clock.now())


async def _stale_holds(
    conn: AsyncConnection, program: ProgramContext, as_of: datetime
) -> list[UUID]:
    return await ledger_service.repository.due_holds(conn, program.id, as_of, CHUNK)


async def _drop_holds(
    conn: AsyncConnection, program: ProgramContext, redemption_ids: list[UUID], as_of: datetime
) -> int:
    released = 0
    for redemption_id in redemption_ids:
        try:
            view = await points_redemption_service.settle_hold(
                conn,
                program,
                redemption_id,
                capture_amount=None,
                now=clock.now(),
                outcome="expired",
            )
        except Conflict:
            continue  # captured or voided at the till since we looked: nothing to release
        released += int(view.row["amount"])
    return released


EXPIRE = Job(_expired, _expire)
RELEASE_PENDING = Job(_releasable, _release)
RELEASE_HOLDS = Job(_stale_holds, _drop_holds)


async def expire_points(engine: AsyncEngine, program_id: UUID, as_of: datetime) -> JobReport:
    """Move what is left in lots expired at ``as_of`` to the expired account."""
    return await run_job(engine, EXPIRE, program_id, as_of)


async def release_pending(engine: AsyncEngine, program_id: UUID, as_of: datetime) -> JobReport:
    """Make pending points whose return window has passed by ``as_of`` spendable."""
    return await run_job(engine, RELEASE_PENDING, program_id, as_of)


async def release_holds(engine: AsyncEngine, program_id: UUID, as_of: datetime) -> JobReport:
    """Void holds nobody captured before ``hold_expires_at`` (status ``expired``)."""
    return await run_job(engine, RELEASE_HOLDS, program_id, as_of)
