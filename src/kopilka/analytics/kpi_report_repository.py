"""Every query of the KPI answers: the daily aggregates summed over a period, the per-day
and per-month sums of members (participants, activity, buyers), cohorts from the month
masks (``docs/analytics.md``)."""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import String, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.kpi_contributions import DAY_COLUMNS
from kopilka.analytics.kpi_repository import (
    DAY_SUMS,
    POINT_SUMS,
    buyer_months_t,
    days_t,
    months_t,
    points_t,
    tier_days_t,
    tuned,
)
from kopilka.analytics.kpis import MONTHS_PER_ERA, BuyerMonthRow, TierDayRow


@dataclass(frozen=True)
class ChecksRow:
    group: str
    member: bool
    sums: dict[str, int]


class KpiReportRepository:
    def tuned(self, conn: AsyncConnection) -> AbstractAsyncContextManager[None]:
        return tuned(conn)

    async def checks(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        start: date,
        end: date,
        group: str | None,
    ) -> list[ChecksRow]:
        """The daily rows of ``start..end`` summed per ``group`` (a column of ``kpi_days``,
        or ``month``: 'YYYY-MM'; None: one group '') and member side."""
        d = days_t.c
        if group is None:
            key: Any = literal("", String())
        elif group == "month":
            key = self._month_label(conn, d.day)
        else:
            key = d[group]
        key = key.label("grp")
        rows = await conn.execute(
            select(key, d.member, *[func.sum(d[name]) for name in DAY_SUMS])
            .where(d.program_id == program_id, d.day >= start, d.day <= end)
            .group_by(key, d.member)
        )
        return [
            ChecksRow(
                str(r[0]),
                bool(r[1]),
                {name: int(r[2 + i] or 0) for i, name in enumerate(DAY_SUMS)},
            )
            for r in rows.all()
        ]

    def _month_label(self, conn: AsyncConnection, day: Any) -> Any:
        if conn.dialect.name == "postgresql":
            return func.to_char(day, "YYYY-MM")
        return func.strftime("%Y-%m", day)

    async def points(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        currency: str,
        start: date,
        end: date,
        by_month: bool,
    ) -> dict[str, dict[str, int]]:
        """Group ('' or 'YYYY-MM') → the points moved in ``start..end``."""
        d = points_t.c
        key = (self._month_label(conn, d.day) if by_month else literal("", String())).label("grp")
        rows = await conn.execute(
            select(key, *[func.sum(d[name]) for name in POINT_SUMS])
            .where(d.program_id == program_id, d.currency == currency, d.day >= start, d.day <= end)
            .group_by(key)
        )
        return {
            str(r[0]): {name: int(r[1 + i] or 0) for i, name in enumerate(POINT_SUMS)}
            for r in rows.all()
        }

    async def tier_days(
        self, conn: AsyncConnection, program_id: UUID, end: date, by_tier: bool
    ) -> list[TierDayRow]:
        """The per-day sums of members up to ``end``, per tier (or one group ''): the
        period's participants, joins, first purchases and active members are sums of them."""
        t = tier_days_t.c
        tier = (t.tier if by_tier else literal("", String())).label("tier")
        rows = await conn.execute(
            select(tier, t.day, *[func.sum(t[name]) for name in DAY_COLUMNS])
            .where(t.program_id == program_id, t.day <= end)
            .group_by(tier, t.day)
        )
        return [TierDayRow(str(r[0]), r[1], *[int(n or 0) for n in r[2:]]) for r in rows.all()]

    async def buyer_months(
        self, conn: AsyncConnection, program_id: UUID, first: int, last: int, by_tier: bool
    ) -> list[BuyerMonthRow]:
        """Per month of ``first..last`` (and tier, or one group ''): its buyers, those who
        bought twice or more in it, those for whom it is the first month of the range they
        bought in, and those of them who bought only once in the whole range."""
        b = buyer_months_t.c

        def members(condition: Any) -> Any:
            return func.sum(case((condition, b.members), else_=0))

        entering = b.previous < first
        tier = (b.tier if by_tier else literal("", String())).label("tier")
        rows = await conn.execute(
            select(
                tier,
                b.month,
                func.sum(b.members),
                members(b.multi),
                members(entering),
                members(entering & (b.next > last) & b.multi.is_(False)),
            )
            .where(b.program_id == program_id, b.month >= first, b.month <= last)
            .group_by(tier, b.month)
        )
        return [
            BuyerMonthRow(str(r[0]), int(r[1]), *[int(n or 0) for n in r[2:]]) for r in rows.all()
        ]

    async def cohorts(
        self, conn: AsyncConnection, program_id: UUID, months: Sequence[int]
    ) -> dict[tuple[int, int], int]:
        """(cohort month, month) → members whose first purchase was in the cohort month and
        who bought in the month, for cohorts and months within ``months``."""
        mm = months_t.c
        columns: list[Any] = []
        for month in months:
            era, bit = month // MONTHS_PER_ERA, 1 << (month % MONTHS_PER_ERA)
            columns.append(
                func.sum(case(((mm.era == era) & (mm.active.op("&")(bit) != 0), 1), else_=0))
            )
        eras = sorted({m // MONTHS_PER_ERA for m in months})
        rows = await conn.execute(
            select(mm.first_month, *columns)
            .where(
                mm.program_id == program_id,
                mm.era.in_(eras),
                mm.first_month >= months[0],
                mm.first_month <= months[-1],
            )
            .group_by(mm.first_month)
        )
        found: dict[tuple[int, int], int] = {}
        for r in rows.all():
            for i, month in enumerate(months):
                if month >= r[0] and r[1 + i]:
                    found[(int(r[0]), month)] = int(r[1 + i])
        return found


kpi_report_repository = KpiReportRepository()
