"""Every query of the KPI answers: the daily aggregates summed over a period, participants
and active members, buyers and cohorts from the month masks (``docs/analytics.md``)."""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, String, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.kpi_repository import (
    COUNTED,
    DAY_SUMS,
    POINT_SUMS,
    days_t,
    members_kpi_t,
    months_t,
    points_t,
    purchases_t,
    tuned,
)
from kopilka.analytics.kpis import MONTHS_PER_ERA
from kopilka.kit.timestamps import Timestamp


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

    async def members(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        bounds: Sequence[datetime],
        since: Sequence[datetime],
        by_tier: bool,
    ) -> dict[str, tuple[dict[int, int], list[int]]]:
        """Tier (or '') → (bucket → members neither merged nor erased who joined before
        ``bounds[0]`` (bucket -1) or in ``[bounds[i], bounds[i + 1])`` (bucket i); and for
        each of ``since``, those of them whose last purchase is at or after it). One pass
        over the ``kpi_members`` index."""
        k = members_kpi_t.c
        joined, last = k.joined_at, k.last_purchase_at

        def counted(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        at = [literal(bound, Timestamp()) for bound in bounds]
        buckets = [
            counted(joined < at[0]),
            *[counted((joined >= at[i]) & (joined < at[i + 1])) for i in range(len(at) - 1)],
        ]
        active = [counted(last >= literal(moment, Timestamp())) for moment in since]
        tier = (k.tier if by_tier else literal("", String())).label("tier")
        result = await conn.execute(
            select(tier, *buckets, *active)
            .where(k.program_id == program_id, k.gone.is_(False), joined < at[-1])
            .group_by(tier)
        )
        found: dict[str, tuple[dict[int, int], list[int]]] = {}
        for r in result.all():
            numbers = [int(n or 0) for n in r[1:]]
            per_bucket = dict(
                zip(range(-1, len(buckets) - 1), numbers[: len(buckets)], strict=True)
            )
            found[str(r[0])] = (per_bucket, numbers[len(buckets) :])
        return found

    async def active_then(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        since: Sequence[datetime],
        until: datetime,
        by_tier: bool,
    ) -> dict[str, list[int]]:
        """Tier (or '') → for each of ``since``, members neither merged nor erased who
        joined before ``until`` with a purchase (not returned in full) in ``[since[i],
        until)``: activity as of a day in the past, read from the purchases (a scan)."""
        p, k = purchases_t.c, members_kpi_t.c
        last = (
            select(p.member_id.label("member_id"), func.max(p.occurred_at).label("last"))
            .where(
                p.program_id == program_id,
                p.member_id.is_not(None),
                COUNTED,
                p.occurred_at >= literal(min(since), Timestamp()),
                p.occurred_at < literal(until, Timestamp()),
            )
            .group_by(p.member_id)
            .subquery()
        )
        tier = (k.tier if by_tier else literal("", String())).label("tier")
        rows = await conn.execute(
            select(
                tier,
                *[
                    func.sum(case((last.c.last >= literal(at, Timestamp()), 1), else_=0))
                    for at in since
                ],
            )
            .select_from(last.join(members_kpi_t, k.member_id == last.c.member_id))
            .where(k.gone.is_(False), k.joined_at < literal(until, Timestamp()))
            .group_by(tier)
        )
        return {str(r[0]): [int(n or 0) for n in r[1:]] for r in rows.all()}

    async def buyers(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        masks: dict[int, int],
        first_days: tuple[date, date],
        by_tier: bool,
    ) -> dict[str, tuple[int, int, int]]:
        """Tier (or '') → (buyers, repeat buyers, new buyers) over the months of ``masks``
        (era → mask): members with a purchase in them, those with two or more (in one month,
        or in two of them), and those whose first purchase ever is within ``first_days``.
        One pass over the masks' index."""
        return await self._buyers(conn, program_id, masks, first_days, tiered=by_tier)

    async def _buyers(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        masks: dict[int, int],
        first_days: tuple[date, date],
        *,
        tiered: bool,
    ) -> dict[str, tuple[int, int, int]]:
        mm = months_t.c
        active = case(*[(mm.era == era, mm.active.op("&")(mask)) for era, mask in masks.items()])
        multi = case(*[(mm.era == era, mm.multi.op("&")(mask)) for era, mask in masks.items()])
        first, last = first_days
        holds_first = and_(
            mm.first_month >= mm.era * MONTHS_PER_ERA,
            mm.first_month < (mm.era + 1) * MONTHS_PER_ERA,
            mm.first_day >= first,
            mm.first_day <= last,
        )
        tier = (mm.tier if tiered else literal("", String())).label("tier")
        source = months_t
        # Per row: bought in the months, two or more purchases in them (a month with two, or
        # two months: a mask with more than one bit, ``x & (x − 1) ≠ 0``).
        per_row = (
            select(
                mm.member_id.label("member_id"),
                tier,
                active.label("active"),
                case(
                    (multi != 0, 1),
                    (active.op("&")(active - 1) != 0, 1),
                    else_=0,
                ).label("repeat"),
                case((holds_first, 1), else_=0).label("new"),
            )
            .select_from(source)
            .where(mm.program_id == program_id, mm.era.in_(sorted(masks)))
            .subquery()
        )
        if len(masks) == 1:
            # One era: one flat pass over its rows, buyers only (a new buyer bought in it).
            ((era, mask),) = masks.items()
            bought = mm.active.op("&")(mask)
            repeat = or_(mm.multi.op("&")(mask) != 0, bought.op("&")(bought - 1) != 0)
            rows = await conn.execute(
                select(
                    tier,
                    func.count(),
                    func.sum(case((repeat, 1), else_=0)),
                    func.sum(case((holds_first, 1), else_=0)),
                )
                .where(mm.program_id == program_id, mm.era == era, bought != 0)
                .group_by(tier)
            )
            return {str(r[0]): (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}
        # The period spans two eras: a member's rows are combined first (bought in each of
        # them is a repeat too).
        per_member = (
            select(
                per_row.c.member_id,
                per_row.c.tier,
                func.sum(case((per_row.c.active != 0, 1), else_=0)).label("eras"),
                func.max(per_row.c.repeat).label("repeat"),
                func.max(per_row.c.new).label("new"),
            )
            .group_by(per_row.c.member_id, per_row.c.tier)
            .subquery()
        )
        rows = await conn.execute(
            select(
                per_member.c.tier,
                func.sum(case((per_member.c.eras > 0, 1), else_=0)),
                func.sum(case(((per_member.c.repeat == 1) | (per_member.c.eras > 1), 1), else_=0)),
                func.sum(per_member.c.new),
            ).group_by(per_member.c.tier)
        )
        return {str(r[0]): (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}

    async def buyers_by_month(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        months: Sequence[int],
        first_days: tuple[date, date],
    ) -> dict[int, tuple[int, int, int]]:
        """Month → (buyers, repeat buyers, new buyers) of that month alone (the new ones'
        first purchase within ``first_days``, the period). One pass per era over its rows:
        a month's buyers are the sum of its bit, ``(active >> bit) & 1``."""
        mm = months_t.c
        first, last = first_days
        found: dict[int, tuple[int, int, int]] = {}
        for era in sorted({month // MONTHS_PER_ERA for month in months}):
            here = [month for month in months if month // MONTHS_PER_ERA == era]
            columns: list[Any] = []
            for month in here:
                bit = literal(month % MONTHS_PER_ERA, Integer())
                first_here = (mm.first_month == month) & (mm.first_day >= first)
                columns += [
                    func.sum(mm.active.op(">>")(bit).op("&")(1)),
                    func.sum(mm.multi.op(">>")(bit).op("&")(1)),
                    func.sum(case((first_here & (mm.first_day <= last), 1), else_=0)),
                ]
            row = (
                await conn.execute(
                    select(*columns).where(mm.program_id == program_id, mm.era == era)
                )
            ).one()
            for i, month in enumerate(here):
                found[month] = (
                    int(row[3 * i] or 0),
                    int(row[3 * i + 1] or 0),
                    int(row[3 * i + 2] or 0),
                )
        return found

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
