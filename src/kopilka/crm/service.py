"""Member facts: what the purchase history says of each member, kept current by the
``crm.facts`` consumer, rebuilt set-wise on demand, scored for RFM by a daily job.

Other features read them through :data:`crm_service` (``facts``); segments compile their
predicates against the ``member_facts`` and ``member_days`` tables. Never commits.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.crm.domain import (
    TWELVE_MONTHS_DAYS,
    average_check,
    days_since,
    top_of,
    window_start,
)
from kopilka.crm.repository import CrmRepository, MemberRange, RfmCutoffs, crm_repository
from kopilka.crm.schemas import Favourite, MemberFacts, Rfm
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext


@dataclass(frozen=True)
class RebuildReport:
    days: int  # bucket rows written
    facts: int  # facts rows written
    scored: int  # members given RFM scores


@dataclass(frozen=True)
class BatchReport:
    """One batch of a whole-program rebuild: the members after ``after`` up to ``upto``
    (None: there were none left)."""

    upto: UUID | None
    days: int = 0
    facts: int = 0


# Members per batch of a whole-program rebuild: about ten purchases each in a large program,
# so a batch is some hundred thousand rows, sorted and grouped in memory.
REBUILD_BATCH = 20_000


class CrmService:
    def __init__(self, repository: CrmRepository = crm_repository) -> None:
        self.repository = repository

    async def facts(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> MemberFacts:
        """One member's facts (404 for a member of another program). The 12-month figures
        and the days since the last purchase are worked out for ``now``."""
        await member_service.get(conn, program, member_id)
        row = await self.repository.get(conn, program.id, member_id)
        since = window_start(now.date(), TWELVE_MONTHS_DAYS)
        purchases_12m, spend_12m = await self.repository.window(conn, program.id, member_id, since)
        if row is None:
            return MemberFacts(
                member_id=str(member_id),
                first_purchase_at=None,
                last_purchase_at=None,
                days_since_last_purchase=None,
                purchases=0,
                spend=0,
                average_check=0,
                purchases_12m=purchases_12m,
                spend_12m=spend_12m,
                returns=0,
                returned=0,
                favourite_categories=[],
                favourite_stores=[],
                rfm=None,
            )
        rfm = None
        if row.rfm_group is not None and row.rfm_at is not None:
            rfm = Rfm(
                recency=row.rfm_recency or 0,
                frequency=row.rfm_frequency or 0,
                monetary=row.rfm_monetary or 0,
                group=row.rfm_group,
                scored_at=row.rfm_at,
            )
        return MemberFacts(
            member_id=str(member_id),
            first_purchase_at=row.first_purchase_at,
            last_purchase_at=row.last_purchase_at,
            days_since_last_purchase=days_since(row.last_purchase_at, now),
            purchases=row.purchases,
            spend=row.spend,
            average_check=average_check(row.spend, row.purchases),
            purchases_12m=purchases_12m,
            spend_12m=spend_12m,
            returns=row.returns,
            returned=row.returned,
            favourite_categories=[
                Favourite(key=r.key, spend=r.spend) for r in top_of(row.categories)
            ],
            favourite_stores=[Favourite(key=r.key, spend=r.spend) for r in top_of(row.stores)],
            rfm=rfm,
        )

    async def refresh(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_ids: Sequence[UUID] | None,
        now: datetime,
    ) -> RebuildReport:
        """Work the facts of ``member_ids`` (None: every member of the program, batch by
        batch in this transaction) out again from their purchases: idempotent, whatever was
        applied before."""
        if member_ids is None:
            days = facts = 0
            after: UUID | None = None
            while (batch := await self.rebuild_batch(conn, program_id, after, now)).upto:
                days, facts, after = days + batch.days, facts + batch.facts, batch.upto
            return RebuildReport(days, facts, 0)
        ids = sorted(set(member_ids))
        if not ids:
            return RebuildReport(0, 0, 0)
        async with self.repository.tuned(conn):
            days = await self.repository.rebuild_days(conn, program_id, ids)
            facts = await self.repository.rebuild_facts(conn, program_id, ids, now.date(), now)
        return RebuildReport(days, facts, 0)

    async def rebuild_batch(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        after: UUID | None,
        now: datetime,
        size: int = REBUILD_BATCH,
    ) -> BatchReport:
        """Work the facts of the next ``size`` members after ``after`` (in id order) out
        again: a whole-program rebuild is these batches, each its own transaction, so that
        memory stays flat and a stopped rebuild goes on from the last batch committed."""
        upto = await member_service.batch_end(conn, program_id, after, size)
        if upto is None:
            return BatchReport(None)
        scope = MemberRange(after, upto)
        async with self.repository.tuned(conn):
            days = await self.repository.rebuild_days(conn, program_id, scope)
            facts = await self.repository.rebuild_facts(conn, program_id, scope, now.date(), now)
        return BatchReport(upto, days, facts)

    async def move_windows(self, conn: AsyncConnection, program_id: UUID, now: datetime) -> int:
        """Move the stored windows on to ``now``'s day for the members whose purchase days
        have left a window since (time passes with no event)."""
        async with self.repository.tuned(conn):
            return await self.repository.move_windows(conn, program_id, now.date())

    async def rfm_cutoffs(self, conn: AsyncConnection, program_id: UUID) -> RfmCutoffs:
        """Where each RFM score starts, over the program's scored members."""
        async with self.repository.tuned(conn):
            return await self.repository.rfm_cutoffs(conn, program_id)

    async def score_rfm_batch(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        cutoffs: RfmCutoffs,
        after: UUID | None,
        now: datetime,
        size: int = REBUILD_BATCH,
    ) -> BatchReport:
        """Score the next ``size`` members after ``after`` against ``cutoffs``."""
        upto = await member_service.batch_end(conn, program_id, after, size)
        if upto is None:
            return BatchReport(None)
        scope = MemberRange(after, upto)
        async with self.repository.tuned(conn):
            scored = await self.repository.score_rfm(conn, program_id, cutoffs, scope, now)
        return BatchReport(upto, 0, scored)

    async def program_members(self, conn: AsyncConnection, program_id: UUID) -> int:
        """How many members the program has (what a rebuild goes through)."""
        return await self.repository.program_members(conn, program_id)

    async def score_rfm(self, conn: AsyncConnection, program_id: UUID, now: datetime) -> int:
        """RFM scores and groups for the program's active members with purchases."""
        async with self.repository.tuned(conn):
            cutoffs = await self.repository.rfm_cutoffs(conn, program_id)
            return await self.repository.score_rfm(conn, program_id, cutoffs, None, now)


crm_service = CrmService()
