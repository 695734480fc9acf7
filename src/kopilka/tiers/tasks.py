"""Tier jobs: reviews that are due, tenure upgrades, and re-qualification after a ladder
change (with a dry run).

Work goes in chunks of members in id order, one transaction each. A reviewed member's next
review lies after the date the job runs for, so running the job again, or after it was
stopped half-way, reviews nobody twice.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading, run_in_transaction
from kopilka.errors import NotFound
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext, program_service
from kopilka.tiers.service import manual_ends_by, tier_service, zone_of

CHUNK = 2000
SAMPLE = 20  # moves listed by a dry run


@dataclass
class ReviewReport:
    members: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class RequalifyReport:
    members: int = 0
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    sample: list[tuple[UUID, str, str]] = field(default_factory=list)


async def _program(conn: AsyncConnection, program_id: UUID) -> ProgramContext:
    program = await program_service.get(conn, program_id)
    if program.settings.tiers is None:
        raise NotFound("the program has no tier ladder", field="tiers")
    return program


async def _review_chunk(
    conn: AsyncConnection, program_id: UUID, as_of: date, after: UUID | None, chunk: int
) -> tuple[list[UUID], Counter[str]]:
    program = await _program(conn, program_id)
    ends_by = manual_ends_by(as_of, zone_of(program), clock.now())
    ids = await tier_service.repository.due(conn, program.id, as_of, ends_by, after, chunk)
    if not ids:
        return ids, Counter()
    return ids, await tier_service.review_members(conn, program, ids, as_of, clock.now())


async def review_tiers(
    engine: AsyncEngine,
    program_id: UUID,
    as_of: date,
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> ReviewReport:
    """Every review due on or before ``as_of`` and every manual tier ending that day; then,
    if the ladder counts tenure, the upgrades that time alone has brought."""
    report = ReviewReport()
    after: UUID | None = None
    while True:
        ids, outcomes = await run_in_transaction(
            engine,
            partial(_review_chunk, program_id=program_id, as_of=as_of, after=after, chunk=chunk),
        )
        # Counted after the commit, so a retried chunk is not counted twice.
        report.members += len(ids)
        report.outcomes.update(outcomes)
        if progress is not None:
            progress(len(ids))
        if len(ids) < chunk:
            break
        after = ids[-1]
    async with reading(engine) as conn:
        ladder = (await _program(conn, program_id)).settings.tiers
    if ladder is not None and "tenure_months" in ladder.metrics():
        tenure = await requalify_tiers(engine, program_id, write=True, tenure_only=True)
        report.outcomes["tenure_upgraded"] += sum(tenure.moves.values())
    return report


async def _requalify_chunk(
    conn: AsyncConnection,
    program_id: UUID,
    after: UUID | None,
    chunk: int,
    write: bool,
    tenure_only: bool,
) -> tuple[list[UUID], list[tuple[UUID, str, str]]]:
    program = await _program(conn, program_id)
    ids = await tier_service.repository.members_page(conn, program.id, after, chunk)
    if not ids:
        return ids, []
    moves = await tier_service.requalify_members(
        conn, program, ids, clock.now(), write=write, tenure_only=tenure_only
    )
    return ids, moves


async def requalify_tiers(
    engine: AsyncEngine,
    program_id: UUID,
    *,
    write: bool,
    tenure_only: bool = False,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> RequalifyReport:
    """Every member's tier worked out again under the ladder in force (``write`` False:
    a dry run that only reports who would move)."""
    report = RequalifyReport()
    after: UUID | None = None
    while True:
        work = partial(
            _requalify_chunk,
            program_id=program_id,
            after=after,
            chunk=chunk,
            write=write,
            tenure_only=tenure_only,
        )
        ids, moves = await run_in_transaction(engine, work)
        report.members += len(ids)
        for member_id, from_tier, to_tier in moves:
            report.moves[(from_tier, to_tier)] += 1
            if len(report.sample) < SAMPLE:
                report.sample.append((member_id, from_tier, to_tier))
        if progress is not None:
            progress(len(ids))
        if len(ids) < chunk:
            return report
        after = ids[-1]
