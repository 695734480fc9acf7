"""Every query of the customer-lifetime predictions: the purchase history read member range
by member range, the fits and the members' predictions written and read, and the
aggregates the console and the API show (bands, top lists)."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import insert_rows
from kopilka.kit.sql import one_of
from kopilka.models import ClvFit, Member, MemberPrediction, Purchase
from kopilka.models.base import table

members_t = table(Member)
purchases_t = table(Purchase)
fits_t = table(ClvFit)
predictions_t = table(MemberPrediction)

# Profiles that are no longer a person of their own: merged into another, or erased.
GONE_STATUSES = ("merged", "erased")
# A purchase counts unless it was returned in full (a free purchase, total 0, counts).
COUNTED = or_(purchases_t.c.total == 0, purchases_t.c.returned_amount < purchases_t.c.total)
# Rows per insert while predictions are written (COPY on PostgreSQL).
WRITE_CHUNK = 10_000


@dataclass(frozen=True)
class FitRow:
    id: UUID
    program_id: UUID
    fitted_at: datetime
    calibration_end: date
    status: str
    reason: str | None
    detail: str | None
    model: str | None
    models: list[Any]
    customers: int
    repeat_customers: int
    predictions: int
    horizon_weeks: int
    discount_rate_percent: int
    seconds: float


@dataclass(frozen=True)
class PredictionRow:
    member_id: UUID
    fit_id: UUID
    p_alive: float
    churn_risk: int
    expected_purchases: float
    expected_spend: int
    clv: int
    fitted_at: datetime


class ClvRepository:
    # --- the purchase history ------------------------------------------------------------------

    async def counted_purchases(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        after: UUID | None,
        upto: UUID,
        until: datetime | None,
    ) -> list[tuple[UUID, datetime, int]]:
        """(member, when, amount net of returns) of the counted purchases that members
        ``after < id <= upto`` of the program (neither merged nor erased) made up to
        ``until`` (None: all), by member then time. Purchases without a member are not read."""
        p, m = purchases_t.c, members_t.c
        where = [
            p.program_id == program_id,
            p.member_id.is_not(None),
            p.member_id <= upto,
            COUNTED,
            m.status.not_in(GONE_STATUSES),
        ]
        if after is not None:
            where.append(p.member_id > after)
        if until is not None:
            where.append(p.occurred_at <= until)
        query = (
            select(p.member_id, p.occurred_at, p.total - p.returned_amount)
            .select_from(purchases_t.join(members_t, m.id == p.member_id))
            .where(*where)
            .order_by(p.member_id, p.occurred_at)
        )
        return [(r[0], r[1], int(r[2])) for r in await conn.execute(query)]

    # --- writing a fit -------------------------------------------------------------------------

    async def add_fit(self, conn: AsyncConnection, row: FitRow) -> None:
        await insert_rows(conn, fits_t, [asdict(row)])

    async def delete_predictions(self, conn: AsyncConnection, program_id: UUID) -> int:
        result = await conn.execute(
            delete(predictions_t).where(predictions_t.c.program_id == program_id)
        )
        return int(result.rowcount or 0)

    async def insert_predictions(
        self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]
    ) -> None:
        for start in range(0, len(rows), WRITE_CHUNK):
            await insert_rows(conn, predictions_t, rows[start : start + WRITE_CHUNK])

    # --- reading -------------------------------------------------------------------------------

    async def latest_fit(
        self, conn: AsyncConnection, program_id: UUID, *, fitted_only: bool
    ) -> FitRow | None:
        """The program's newest fit (only those that made predictions: ``fitted_only``)."""
        f = fits_t.c
        where = [f.program_id == program_id]
        if fitted_only:
            where.append(f.status == "fitted")
        query = select(*fits_t.c).where(*where).order_by(f.fitted_at.desc(), f.id.desc()).limit(1)
        row = (await conn.execute(query)).first()
        return None if row is None else FitRow(**row._mapping)

    async def prediction(
        self, conn: AsyncConnection, program_id: UUID, member_id: UUID
    ) -> PredictionRow | None:
        mp = predictions_t.c
        query = select(
            mp.member_id,
            mp.fit_id,
            mp.p_alive,
            mp.churn_risk,
            mp.expected_purchases,
            mp.expected_spend,
            mp.clv,
            mp.fitted_at,
        ).where(mp.member_id == member_id, mp.program_id == program_id)
        row = (await conn.execute(query)).first()
        return None if row is None else PredictionRow(**row._mapping)

    async def facts_of(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> list[tuple[UUID, int, int]]:
        """(member, churn risk, CLV) of those of ``member_ids`` with a prediction."""
        if not member_ids:
            return []
        mp = predictions_t.c
        query = select(mp.member_id, mp.churn_risk, mp.clv).where(
            one_of(conn, mp.member_id, member_ids), mp.program_id == program_id
        )
        return [(r[0], int(r[1]), int(r[2])) for r in await conn.execute(query)]

    async def banded(
        self, conn: AsyncConnection, program_id: UUID, column: str, edges: Sequence[int]
    ) -> dict[int, tuple[int, int]]:
        """Band index → (members, CLV summed) of the program's predictions by ``column``
        (``churn_risk`` or ``clv``), bands starting at ``edges`` (ascending)."""
        value = predictions_t.c[column]
        bucket = case(
            *[(value >= low, index) for index, low in reversed(list(enumerate(edges)))],
            else_=-1,
        ).label("bucket")
        # Bucketed in a subquery, grouped by the column's name (see dashboard_repository).
        rows = (
            select(bucket, predictions_t.c.clv)
            .where(predictions_t.c.program_id == program_id)
            .subquery()
        )
        query = select(rows.c.bucket, func.count(), func.sum(rows.c.clv)).group_by(rows.c.bucket)
        return {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in await conn.execute(query)}

    async def top_by_clv(
        self, conn: AsyncConnection, program_id: UUID, limit: int, *, min_churn_risk: int = 0
    ) -> list[PredictionRow]:
        """The ``limit`` members with the highest CLV (among those at or above
        ``min_churn_risk``), highest first."""
        mp = predictions_t.c
        where = [mp.program_id == program_id]
        if min_churn_risk > 0:
            where.append(mp.churn_risk >= min_churn_risk)
        query = (
            select(
                mp.member_id,
                mp.fit_id,
                mp.p_alive,
                mp.churn_risk,
                mp.expected_purchases,
                mp.expected_spend,
                mp.clv,
                mp.fitted_at,
            )
            .where(*where)
            .order_by(mp.clv.desc(), mp.member_id)
            .limit(limit)
        )
        return [PredictionRow(**r._mapping) for r in await conn.execute(query)]

    async def predicted_members(self, conn: AsyncConnection, program_id: UUID) -> int:
        query = select(func.count()).where(predictions_t.c.program_id == program_id)
        return int((await conn.execute(query)).scalar_one())


clv_repository = ClvRepository()
