"""The KPIs' aggregates: kept from events and rebuilt from history. Never commits.

- :meth:`KpiService.apply` is the ``analytics.kpis`` consumer's work: a delivered batch of
  events summed per key of the daily aggregates and added to them, and the month masks of
  the members it touched worked out again.
- :meth:`KpiService.rebuild_batch` (and its siblings) work the aggregates out again from the
  core's tables, one range of members per call (``kpi_tasks`` runs them, one transaction
  each).

``kpi_report_service`` answers from them (``docs/analytics.md``).
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.kpi_contributions import difference
from kopilka.analytics.kpi_member_repository import KpiMemberRepository, kpi_member_repository
from kopilka.analytics.kpi_repository import (
    DayKey,
    KpiRepository,
    MemberRange,
    PurchaseFacts,
    kpi_repository,
)
from kopilka.analytics.kpis import local_day, local_midnight
from kopilka.members.service import member_service
from kopilka.outbox import events as ev
from kopilka.outbox.crm_events import MemberMerged
from kopilka.programs.service import ProgramContext, program_service

logger = logging.getLogger("kopilka.analytics")

# Members per batch of a rebuild (as the member facts' rebuild).
REBUILD_BATCH = 20_000
# Points events → the column of ``kpi_point_days`` they add to (``points.adjusted`` from a
# merge moves points between two members through the transfers account: not counted).
POINT_COLUMNS: dict[type[ev.PointsMoved], str] = {
    ev.PointsEarned: "issued",
    ev.PointsReversed: "reversed",
    ev.PointsRedeemed: "redeemed",
    ev.PointsCaptured: "redeemed",
    ev.PointsRefunded: "refunded",
    ev.PointsExpired: "expired",
    ev.PointsAdjusted: "adjusted",
}


@dataclass
class Deltas:
    """What a batch adds to the daily rows of one program."""

    days: dict[DayKey, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    points: dict[tuple[date, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    members: set[UUID] = field(default_factory=set)

    def add(self, key: DayKey, **sums: int) -> None:
        row = self.days[key]
        for name, value in sums.items():
            row[name] = row.get(name, 0) + value

    def add_points(self, key: tuple[date, str], name: str, amount: int) -> None:
        row = self.points[key]
        row[name] = row.get(name, 0) + amount


def purchase_sums(total: int, discount: int, points_spent: int, sign: int = 1) -> dict[str, int]:
    return {
        "purchases": sign,
        "revenue": sign * total,
        "discount": sign * discount,
        "points_spent": sign * points_spent,
        "paid_with_points": sign * (1 if points_spent > 0 else 0),
    }


def fold(batch: Sequence[ev.DomainEvent], zone: str, facts: dict[UUID, PurchaseFacts]) -> Deltas:
    """What one program's events add to its aggregates (``facts``: the purchases that its
    returns and claims name)."""
    deltas = Deltas()
    # Every member an event is about has their row and month masks worked out again (their
    # purchases, tier or status may have changed).
    deltas.members.update(e.member_id for e in batch if e.member_id is not None)
    for event in batch:
        if isinstance(event, ev.PurchaseRecorded):
            member = event.member_id is not None
            day = local_day(event.occurred_at, zone)
            key = DayKey(day, event.store or "", event.channel, event.tier or "", member)
            if not member:
                key = DayKey(day, event.store or "", event.channel, "", False)
            deltas.add(key, **purchase_sums(event.total, event.discount, event.points_spent))
        elif isinstance(event, ev.ReturnRecorded):
            found = facts.get(event.purchase_id)
            if found is None:
                logger.warning("return %s names an unknown purchase", event.return_id)
                continue
            member = event.member_id is not None
            key = DayKey(
                local_day(event.occurred_at, zone),
                found.store,
                found.channel,
                found.tier if member else "",
                member,
            )
            deltas.add(key, returns=1, returned=event.amount)
        elif isinstance(event, ev.PointsMoved):
            column = POINT_COLUMNS.get(type(event))
            if column is None or (column == "adjusted" and event.reference_type == "merge"):
                continue
            day = local_day(event.occurred_at, zone)
            deltas.add_points((day, event.currency), column, event.amount)
        elif isinstance(event, MemberMerged):
            deltas.members.add(event.merged_id)
        elif isinstance(event, ev.PurchaseClaimed) and event.member_id is not None:
            fold_claim(deltas, event, facts.get(event.purchase_id), zone)
    return deltas


def fold_claim(
    deltas: Deltas,
    claim: ev.PurchaseClaimed,
    found: PurchaseFacts | None,
    zone: str,
) -> None:
    """A claim moves the check from the non-member row of the purchase's day to the
    member's (on the tier the claim reports), counted as claimed; the returns recorded
    before the claim move with it (the purchase's returns are the member's now)."""
    day = local_day(claim.purchased_at, zone)
    store, tier = claim.store or "", claim.tier or ""
    discount = found.discount if found else 0
    spent = found.points_spent if found else 0
    deltas.add(
        DayKey(day, store, claim.channel, "", False),
        **purchase_sums(claim.total, discount, spent, sign=-1),
    )
    deltas.add(
        DayKey(day, store, claim.channel, tier, True),
        **purchase_sums(claim.total, discount, spent),
        claimed=1,
    )
    # The returns recorded before the claim are the first ones, up to the amount the claim
    # says had come back; a later return's own event counts it for the member. (Times alone
    # cannot tell: a claim and a return may be written at the same instant.)
    before = claim.returned_amount
    for returned in sorted(found.returns, key=lambda r: r.created_at) if found else ():
        if before <= 0:
            break
        before -= returned.amount
        returned_on = local_day(returned.occurred_at, zone)
        deltas.add(
            DayKey(returned_on, store, claim.channel, "", False),
            returns=-1,
            returned=-returned.amount,
        )
        deltas.add(
            DayKey(returned_on, store, claim.channel, tier, True),
            returns=1,
            returned=returned.amount,
        )


class KpiService:
    def __init__(
        self,
        repository: KpiRepository = kpi_repository,
        members: KpiMemberRepository = kpi_member_repository,
    ) -> None:
        self.repository = repository
        self.members = members

    # --- kept from events --------------------------------------------------------------------

    async def apply(self, conn: AsyncConnection, batch: Sequence[ev.DomainEvent]) -> None:
        """Add a delivered batch of events to the aggregates of their programs."""
        by_program: dict[UUID, list[ev.DomainEvent]] = defaultdict(list)
        for event in batch:
            by_program[event.program_id].append(event)
        for program_id in sorted(by_program):
            events = by_program[program_id]
            program = await program_service.get(conn, program_id)
            zone = program.settings.timezone
            named = {e.purchase_id for e in events if isinstance(e, ev.ReturnRecorded)}
            claimed = {e.purchase_id for e in events if isinstance(e, ev.PurchaseClaimed)}
            facts = await self.repository.purchase_facts(
                conn, program_id, sorted(named | claimed), with_returns=sorted(claimed)
            )
            deltas = fold(events, zone, facts)
            await self.repository.add_days(conn, program_id, deltas.days)
            await self.repository.add_points(conn, program_id, deltas.points)
            if deltas.members:
                async with self.repository.tuned(conn):
                    await self._refresh(conn, program_id, zone, sorted(deltas.members))

    # --- rebuilt -------------------------------------------------------------------------------

    async def rebuild_start(
        self, conn: AsyncConnection, program: ProgramContext, since: date | None
    ) -> None:
        """Delete the daily rows a rebuild from ``since`` (None: all, and the member rows
        with the sums of them) works out again."""
        await self.repository.clear(conn, program.id, since)

    async def rebuild_batch(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        after: UUID | None,
        since: date | None,
        size: int = REBUILD_BATCH,
    ) -> UUID | None:
        """Add the next ``size`` members' (after ``after``, in id order) checks, returns
        and points from ``since`` on, and work their month masks out again; the last member
        id done (None: there were none left)."""
        upto = await member_service.batch_end(conn, program.id, after, size)
        if upto is None:
            return None
        zone = program.settings.timezone
        scope = MemberRange(after, upto)
        start = local_midnight(since, zone) if since else None
        async with self.repository.tuned(conn):
            await self.repository.rebuild_checks(conn, program.id, zone, scope, start)
            await self.repository.rebuild_points(conn, program.id, zone, scope, start)
            await self._refresh(conn, program.id, zone, scope)
        return upto

    async def _refresh(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        zone: str,
        scope: Sequence[UUID] | MemberRange,
    ) -> None:
        """Work the member rows of ``scope`` out again, and add to the per-day and
        per-month sums what that changed in what those members add to them."""
        await self.members.lock_members(conn, program_id, scope)
        before = await self.members.member_states(conn, program_id, zone, scope)
        await self.members.refresh_members(conn, program_id, zone, scope)
        await self.members.refresh_months(conn, program_id, zone, scope)
        after = await self.members.member_states(conn, program_id, zone, scope)
        await self.members.add_sums(conn, program_id, difference(before.values(), after.values()))

    async def rebuild_without_member(
        self, conn: AsyncConnection, program: ProgramContext, since: date | None
    ) -> None:
        """Add the checks and returns of the purchases without a member."""
        zone = program.settings.timezone
        start = local_midnight(since, zone) if since else None
        async with self.repository.tuned(conn):
            await self.repository.rebuild_checks(conn, program.id, zone, None, start)


kpi_service = KpiService()
