"""Tiers when two profiles of one person are merged: the higher tier stays."""

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.tiers import domain
from kopilka.tiers.domain import TierChange
from kopilka.tiers.service import TierService, ladder_of, tier_service


async def keep_the_higher(
    conn: AsyncConnection,
    program: ProgramContext,
    source: UUID,
    target: UUID,
    now: datetime,
    service: TierService = tier_service,
) -> str | None:
    """If ``source`` stands higher on the ladder than ``target``, ``target`` takes its whole
    tier state (the tier, how and when it was reached, its review date, a manual tier),
    with a ``merge`` change; otherwise ``target`` keeps its own. Returns the tier taken, if
    any. Takes both members' locks."""
    ladder = ladder_of(program)
    if ladder is None:
        return None
    tracker = await service._locked_tracker(conn, program, [source, target], now, now)
    taken, kept = tracker.live(source, now), tracker.live(target, now)
    if domain.rank(ladder, taken.tier) <= domain.rank(ladder, kept.tier):
        return None
    async with unit_of_work(conn, now) as unit:
        tracker.attach(unit)
        change = TierChange(kept.tier, taken.tier, "merge", now, source=f"member:{source}")
        tracker.record(target, taken, change)
    return taken.tier
