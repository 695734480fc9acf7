"""The KPIs' member rows (``kpi_members``, the month masks ``kpi_member_months``), worked
out again from the core's tables for a set or range of members, and the per-day and
per-month sums of members (``kpi_tier_days``, ``kpi_buyer_months``) they are added to: the
queries of :meth:`KpiService._refresh`."""

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    Text,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.kpi_contributions import (
    DAY_COLUMNS,
    MemberState,
    Sums,
    months_of,
    parse_days,
)
from kopilka.analytics.kpi_repository import (
    COUNTED,
    GONE_STATUSES,
    UPSERT_ROWS,
    MemberRange,
    adding_upsert,
    buyer_months_t,
    local_day,
    members_kpi_t,
    members_t,
    months_t,
    purchases_t,
    tier_days_t,
    tiers_t,
    within,
)
from kopilka.analytics.kpis import MONTHS_PER_ERA
from kopilka.analytics.kpis import local_day as local_day_of


def day_number(conn: AsyncConnection, day: Any) -> Any:
    """Days since 1970-01-01 of a date expression."""
    if conn.dialect.name == "postgresql":
        return cast(day, Date) - literal(date(1970, 1, 1), Date())
    return cast(func.julianday(day) - 2440587.5, Integer)


def joined_numbers(conn: AsyncConnection, numbers: Any) -> Any:
    """An aggregate: the group's integers as one comma-separated text."""
    if conn.dialect.name == "postgresql":
        return func.string_agg(cast(numbers, Text), ",")
    return func.group_concat(numbers, ",")


def month_of(conn: AsyncConnection, day: Any) -> Any:
    """``year × 12 + month − 1`` of a date expression."""
    if conn.dialect.name == "postgresql":
        year = cast(func.extract("year", day), Integer)
        month = cast(func.extract("month", day), Integer)
    else:
        year = cast(func.strftime("%Y", day), Integer)
        month = cast(func.strftime("%m", day), Integer)
    return year * 12 + month - 1


class KpiMemberRepository:
    async def refresh_months(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        zone: str,
        scope: Sequence[UUID] | MemberRange,
    ) -> int:
        """Work the month masks of the members in ``scope`` out again from their purchases
        (members left without purchases lose their rows)."""
        where = within(conn, months_t.c.member_id, scope)
        await conn.execute(delete(months_t).where(months_t.c.program_id == program_id, *where))
        p = purchases_t.c
        day = local_day(conn, p.occurred_at, zone)
        days = (
            select(p.member_id.label("member_id"), day.label("day"))
            .where(p.program_id == program_id, *within(conn, p.member_id, scope))
            .subquery()
        )
        month = month_of(conn, days.c.day)
        months = (
            select(
                days.c.member_id,
                month.label("month"),
                func.count().label("n"),
                func.min(days.c.day).label("first_day"),
            )
            .group_by(days.c.member_id, month)
            .cte("months")
        )
        firsts = (
            select(
                months.c.member_id,
                func.min(months.c.month).label("first_month"),
                func.min(months.c.first_day).label("first_day"),
            )
            .group_by(months.c.member_id)
            .cte("firsts")
        )
        one = cast(literal(1), BigInteger)
        bit = one.op("<<")(months.c.month % MONTHS_PER_ERA)
        era = (months.c.month // MONTHS_PER_ERA).label("era")
        tier = func.coalesce(tiers_t.c.tier, "")
        source = (
            select(
                months.c.member_id,
                era,
                literal(program_id),
                cast(func.sum(bit), BigInteger),
                cast(func.sum(case((months.c.n >= 2, bit), else_=0)), BigInteger),
                firsts.c.first_month,
                firsts.c.first_day,
                tier,
            )
            .select_from(
                months.join(firsts, firsts.c.member_id == months.c.member_id).outerjoin(
                    tiers_t, tiers_t.c.member_id == months.c.member_id
                )
            )
            .group_by(months.c.member_id, era, firsts.c.first_month, firsts.c.first_day, tier)
        )
        columns = ["member_id", "era", "program_id", "active", "multi", "first_month"]
        result = await conn.execute(
            months_t.insert().from_select([*columns, "first_day", "tier"], source)
        )
        return max(result.rowcount or 0, 0)

    async def refresh_members(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        zone: str,
        scope: Sequence[UUID] | MemberRange,
    ) -> int:
        """Work the ``kpi_members`` rows of the members in ``scope`` out again from their
        profiles, tiers and purchases (rows are updated in place, never deleted: the lock
        ``lock_members`` took stays on them)."""
        m, p = members_t.c, purchases_t.c
        counted = [p.program_id == program_id, COUNTED, *within(conn, p.member_id, scope)]
        last = (
            select(p.member_id.label("member_id"), func.max(p.occurred_at).label("at"))
            .where(*counted)
            .group_by(p.member_id)
            .subquery()
        )
        bought_on = (
            select(
                p.member_id.label("member_id"),
                day_number(conn, local_day(conn, p.occurred_at, zone)).label("n"),
            )
            .where(*counted)
            .distinct()
            .subquery()
        )
        days = (
            select(bought_on.c.member_id, joined_numbers(conn, bought_on.c.n).label("days"))
            .group_by(bought_on.c.member_id)
            .subquery()
        )
        source = (
            select(
                m.id,
                m.program_id,
                m.status.in_(GONE_STATUSES),
                func.coalesce(tiers_t.c.tier, ""),
                m.created_at,
                last.c.at,
                func.coalesce(days.c.days, ""),
            )
            .select_from(
                members_t.outerjoin(tiers_t, tiers_t.c.member_id == m.id)
                .outerjoin(last, last.c.member_id == m.id)
                .outerjoin(days, days.c.member_id == m.id)
            )
            .where(m.program_id == program_id, *within(conn, m.id, scope))
        )
        columns = [
            "member_id",
            "program_id",
            "gone",
            "tier",
            "joined_at",
            "last_purchase_at",
            "days",
        ]
        base, _ = adding_upsert(conn, members_kpi_t, ("member_id",), ())
        statement = base.from_select(columns, source.where(true()))
        result = await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["member_id"],
                set_={name: statement.excluded[name] for name in columns[2:]},
            )
        )
        return max(result.rowcount or 0, 0)

    async def lock_members(
        self, conn: AsyncConnection, program_id: UUID, scope: Sequence[UUID] | MemberRange
    ) -> None:
        """Hold the ``kpi_members`` rows of ``scope`` until the transaction ends, so that
        what the members add to the member sums is read, worked out again and its change
        added by one transaction at a time (PostgreSQL; SQLite has one writer anyway).
        Members without a row get one that adds nothing (as if gone, with no months) first:
        a second transaction's insert waits for the first's and then finds it."""
        m, k = members_t.c, members_kpi_t.c
        placeholders = select(
            m.id, m.program_id, literal(True), literal(""), m.created_at, literal("")
        ).where(m.program_id == program_id, *within(conn, m.id, scope), true())
        maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        columns = ["member_id", "program_id", "gone", "tier", "joined_at", "days"]
        await conn.execute(
            maker(members_kpi_t)
            .from_select(columns, placeholders)
            .on_conflict_do_nothing(index_elements=["member_id"])
        )
        await conn.execute(
            select(k.member_id)
            .where(k.program_id == program_id, *within(conn, k.member_id, scope))
            .order_by(k.member_id)
            .with_for_update()
        )

    async def member_states(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        zone: str,
        scope: Sequence[UUID] | MemberRange,
    ) -> dict[UUID, MemberState]:
        """What the members in ``scope`` add to the per-day and per-month sums, as their
        rows say now (after ``lock_members``: as the last transaction to hold them left
        them — each read is a statement of its own, so it sees what committed before it)."""
        k, mm = members_kpi_t.c, months_t.c
        query = select(k.member_id, k.gone, k.tier, k.joined_at, k.days).where(
            k.program_id == program_id, *within(conn, k.member_id, scope)
        )
        rows = (await conn.execute(query)).all()
        months = await conn.execute(
            select(mm.member_id, mm.era, mm.active, mm.multi, mm.first_day, mm.tier).where(
                mm.program_id == program_id, *within(conn, mm.member_id, scope)
            )
        )
        eras: dict[UUID, list[tuple[int, int, int]]] = {}
        firsts: dict[UUID, tuple[date, str]] = {}
        for member_id, era, active, multi, first_day, tier in months.all():
            eras.setdefault(member_id, []).append((int(era), int(active), int(multi)))
            firsts[member_id] = (first_day, tier)
        found: dict[UUID, MemberState] = {}
        for member_id, gone, tier, joined_at, days in rows:
            found[member_id] = MemberState(
                gone=bool(gone),
                tier=tier,
                joined=local_day_of(joined_at, zone),
                days=tuple(parse_days(days or "")),
                months=months_of(eras.get(member_id, [])),
                first_day=firsts[member_id][0] if member_id in firsts else None,
            )
        # Month rows without a profile row (none are expected): counted as buyers only.
        for member_id in firsts.keys() - found.keys():
            first_day, tier = firsts[member_id]
            found[member_id] = MemberState(
                True, tier, None, months=months_of(eras[member_id]), first_day=first_day
            )
        return found

    async def add_sums(self, conn: AsyncConnection, program_id: UUID, sums: Sums) -> None:
        """Add to ``kpi_tier_days`` and ``kpi_buyer_months``, each in key order (two
        workers' partitions take their row locks in one order, so they never deadlock)."""
        if sums.days:
            rows = [
                {
                    "program_id": program_id,
                    "day": day,
                    "tier": tier,
                    **{name: columns.get(name, 0) for name in DAY_COLUMNS},
                }
                for (day, tier), columns in sorted(sums.days.items())
            ]
            day_keys = ("program_id", "day", "tier")
            base, build = adding_upsert(conn, tier_days_t, day_keys, DAY_COLUMNS)
            for start in range(0, len(rows), UPSERT_ROWS):
                await conn.execute(build(base.values(rows[start : start + UPSERT_ROWS])))
        if sums.months:
            keys = ("program_id", "month", "tier", "previous", "next", "multi")
            rows = [
                {
                    "program_id": program_id,
                    "month": month,
                    "tier": tier,
                    "previous": previous,
                    "next": following,
                    "multi": multi,
                    "members": n,
                }
                for (month, tier, previous, following, multi), n in sorted(sums.months.items())
            ]
            base, build = adding_upsert(conn, buyer_months_t, keys, ("members",))
            for start in range(0, len(rows), UPSERT_ROWS):
                await conn.execute(build(base.values(rows[start : start + UPSERT_ROWS])))


kpi_member_repository = KpiMemberRepository()
