"""Every query of the dashboard: aggregates over a whole program, one statement each.

Time buckets are computed by the caller as instants (the program's week boundaries in
UTC), so the same statement buckets correctly on SQLite and PostgreSQL and across a
daylight-saving change, without any time-zone arithmetic in SQL.
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import JournalEntry, Member, MemberBalance, MemberTier, Posting, Purchase
from kopilka.models.base import table

members_t = table(Member)
purchases_t = table(Purchase)
entries_t = table(JournalEntry)
postings_t = table(Posting)
balances_t = table(MemberBalance)
tiers_t = table(MemberTier)

# Profiles that are no longer a person of their own: merged into another, or erased.
GONE_STATUSES = ("merged", "erased")


class DashboardRepository:
    async def member_counts(self, conn: AsyncConnection, program_id: UUID) -> tuple[int, int]:
        """(members, of whom blocked): profiles neither merged nor erased."""
        query = select(
            func.count(),
            func.coalesce(func.sum(case((members_t.c.status == "blocked", 1), else_=0)), 0),
        ).where(members_t.c.program_id == program_id, members_t.c.status.not_in(GONE_STATUSES))
        total, blocked = (await conn.execute(query)).one()
        return int(total), int(blocked)

    async def buyers(
        self, conn: AsyncConnection, program_id: UUID, since: Sequence[datetime]
    ) -> list[int]:
        """How many distinct members bought at or after each of ``since`` (one scan from
        the earliest of them)."""
        if not since:
            return []
        member = purchases_t.c.member_id
        at = purchases_t.c.occurred_at
        query = select(
            *[func.count(func.distinct(case((at >= start, member)))) for start in since]
        ).where(purchases_t.c.program_id == program_id, at >= min(since))
        return [int(n) for n in (await conn.execute(query)).one()]

    async def account_totals(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        currency: str,
        accounts: Sequence[str],
        since: datetime,
    ) -> dict[str, int]:
        """The sum of the postings on each of the program's ``accounts`` in ``currency``
        of the journal entries that occurred at or after ``since``."""
        # The period's entries first, then their postings by the postings' entry index:
        # a join lets SQLite walk every posting of every program instead.
        entries = select(entries_t.c.id).where(
            entries_t.c.program_id == program_id, entries_t.c.occurred_at >= since
        )
        query = (
            select(postings_t.c.account, func.sum(postings_t.c.amount))
            .where(
                postings_t.c.entry_id.in_(entries),
                postings_t.c.currency == currency,
                postings_t.c.account.in_(accounts),
            )
            .group_by(postings_t.c.account)
        )
        return {r[0]: int(r[1] or 0) for r in await conn.execute(query)}

    async def liability(self, conn: AsyncConnection, program_id: UUID, currency: str) -> int:
        """The members' available and pending points of ``currency``, summed."""
        query = select(
            func.coalesce(func.sum(balances_t.c.available + balances_t.c.pending), 0)
        ).where(balances_t.c.program_id == program_id, balances_t.c.currency == currency)
        return int((await conn.execute(query)).scalar_one())

    async def purchases_by_bucket(
        self, conn: AsyncConnection, program_id: UUID, bounds: Sequence[datetime]
    ) -> dict[int, tuple[int, int]]:
        """Bucket index → (purchases, their totals summed) for the purchases that occurred
        in [bounds[i], bounds[i + 1]); ``bounds`` ascending."""
        if len(bounds) < 2:
            return {}
        at = purchases_t.c.occurred_at
        bucket = case(
            *[(at >= start, index) for index, start in reversed(list(enumerate(bounds[:-1])))],
            else_=-1,
        ).label("bucket")
        # Bucketed in a subquery: the outer GROUP BY names the column, so PostgreSQL never
        # compares two copies of the CASE with their own bound parameters.
        rows = (
            select(bucket, purchases_t.c.total)
            .where(purchases_t.c.program_id == program_id, at >= bounds[0], at < bounds[-1])
            .subquery()
        )
        query = select(rows.c.bucket, func.count(), func.sum(rows.c.total)).group_by(rows.c.bucket)
        return {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in await conn.execute(query)}

    async def members_per_tier(
        self, conn: AsyncConnection, program_id: UUID
    ) -> dict[str | None, int]:
        """Tier → members (None: members without a tier row, who are on the entry tier),
        for profiles neither merged nor erased."""
        query = (
            select(tiers_t.c.tier, func.count())
            .select_from(members_t.outerjoin(tiers_t, tiers_t.c.member_id == members_t.c.id))
            .where(members_t.c.program_id == program_id, members_t.c.status.not_in(GONE_STATUSES))
            .group_by(tiers_t.c.tier)
        )
        return {r[0]: int(r[1]) for r in await conn.execute(query)}


dashboard_repository = DashboardRepository()
