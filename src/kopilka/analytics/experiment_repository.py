"""Every query of the experiments' report: who is in an experiment, what each member bought
in the window and the pre-period, and the points they earned. One aggregate statement each;
the arms are worked out by the service."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres
from kopilka.models import ExperimentAssignment, JournalEntry, Lot, Member, Purchase
from kopilka.models.base import table

assignments_t = table(ExperimentAssignment)
members_t = table(Member)
purchases_t = table(Purchase)
lots_t = table(Lot)
entries_t = table(JournalEntry)

# A merged profile's history moved to the survivor, who is counted instead.
MERGED = "merged"
# Points earned by purchases and activities (not adjustments, opening balances or merges).
EARN = "earn"


@dataclass(frozen=True)
class MemberSums:
    """One member's purchases in the window (``revenue`` net of returns, ``purchases`` not
    returned in full, ``visits`` as UTC days with such a purchase, coupon ``discounts``)
    and revenue in the pre-period."""

    member_id: UUID
    revenue: int
    purchases: int
    visits: int
    discounts: int
    pre_revenue: int


def _day(conn: AsyncConnection, column: Any) -> Any:
    """The UTC date of an instant column."""
    if is_postgres(conn):
        return func.date(func.timezone("UTC", column))
    return func.date(column)


class ExperimentRepository:
    async def first_assignments(
        self, conn: AsyncConnection, program_id: UUID
    ) -> dict[str, tuple[datetime, int]]:
        """Experiment → (its first recorded assignment, members recorded)."""
        a = assignments_t.c
        query = (
            select(a.experiment, func.min(a.assigned_at), func.count())
            .where(a.program_id == program_id)
            .group_by(a.experiment)
        )
        return {r[0]: (as_utc(r[1]), int(r[2])) for r in await conn.execute(query)}

    async def recorded_arms(
        self, conn: AsyncConnection, program_id: UUID, experiment: str
    ) -> dict[UUID, str]:
        a = assignments_t.c
        query = select(a.member_id, a.arm).where(
            a.program_id == program_id, a.experiment == experiment
        )
        return {r[0]: r[1] for r in await conn.execute(query)}

    async def members_before(
        self, conn: AsyncConnection, program_id: UUID, before: datetime
    ) -> list[UUID]:
        """Members who joined before ``before``, except profiles merged into another."""
        m = members_t.c
        query = (
            select(m.id)
            .where(m.program_id == program_id, m.created_at < before, m.status != MERGED)
            .order_by(m.id)
        )
        return [r[0] for r in await conn.execute(query)]

    async def purchase_sums(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        pre_start: datetime,
        start: datetime,
        end: datetime,
    ) -> list[MemberSums]:
        """Per member, purchases in [start, end) and revenue in [pre_start, start)."""
        p = purchases_t.c
        net = p.total - p.returned_amount
        inside = p.occurred_at >= start
        kept = and_(inside, p.total > p.returned_amount)
        discount = func.coalesce(p.payments["discount"].as_integer(), 0)
        query = (
            select(
                p.member_id,
                func.sum(case((inside, net), else_=0)),
                func.sum(case((kept, 1), else_=0)),
                func.count(func.distinct(case((kept, _day(conn, p.occurred_at))))),
                func.sum(case((inside, discount), else_=0)),
                func.sum(case((inside, 0), else_=net)),
            )
            .where(
                p.program_id == program_id,
                p.member_id.is_not(None),
                p.occurred_at >= pre_start,
                p.occurred_at < end,
            )
            .group_by(p.member_id)
        )
        return [
            MemberSums(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))
            for r in await conn.execute(query)
        ]

    async def points_earned(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        currency: str,
        start: datetime,
        end: datetime,
    ) -> dict[UUID, int]:
        """Points of ``currency`` each member earned (by purchases and activities) in
        [start, end), as credited (before any later return)."""
        lot = lots_t.c
        query = (
            select(lot.member_id, func.sum(lot.amount))
            .select_from(lots_t.join(entries_t, entries_t.c.id == lot.entry_id))
            .where(
                lot.program_id == program_id,
                lot.currency == currency,
                lot.earned_at >= start,
                lot.earned_at < end,
                entries_t.c.kind == EARN,
            )
            .group_by(lot.member_id)
        )
        return {r[0]: int(r[1]) for r in await conn.execute(query)}

    async def counts_by_arm(
        self, conn: AsyncConnection, program_id: UUID, experiment: str
    ) -> dict[str, int]:
        """Members recorded per arm (assigned on first use)."""
        a = assignments_t.c
        query = (
            select(a.arm, func.count())
            .where(a.program_id == program_id, a.experiment == experiment)
            .group_by(a.arm)
        )
        return {r[0]: int(r[1]) for r in await conn.execute(query)}


experiment_repository = ExperimentRepository()
