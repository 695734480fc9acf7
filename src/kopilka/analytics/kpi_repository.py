"""The KPIs' aggregates: added to by the consumer, worked out again by a rebuild (set-wise,
from the core's tables, one range of members at a time). The answers read them through
``kpi_report_repository``.

A day is the program's local day. PostgreSQL works it out with ``timezone()``; SQLite, which
has no time zones, moves the UTC instant by the offset in force at it (``utc_offsets``), so
both give the day the consumer works out in Python.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
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
    or_,
    select,
    true,
    type_coerce,
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
from kopilka.analytics.kpis import MONTHS_PER_ERA, utc_offsets
from kopilka.analytics.kpis import local_day as local_day_of
from kopilka.kit.sql import one_of
from kopilka.kit.timestamps import Timestamp
from kopilka.models import (
    JournalEntry,
    KpiBuyerMonth,
    KpiDay,
    KpiMember,
    KpiMemberMonth,
    KpiPointDay,
    KpiTierDay,
    Member,
    MemberTier,
    Posting,
    Purchase,
    PurchaseReturn,
)
from kopilka.models.base import table

days_t = table(KpiDay)
points_t = table(KpiPointDay)
months_t = table(KpiMemberMonth)
members_kpi_t = table(KpiMember)
tier_days_t = table(KpiTierDay)
buyer_months_t = table(KpiBuyerMonth)
purchases_t = table(Purchase)
returns_t = table(PurchaseReturn)
entries_t = table(JournalEntry)
postings_t = table(Posting)
members_t = table(Member)
tiers_t = table(MemberTier)

DAY_SUMS = (
    "purchases",
    "revenue",
    "discount",
    "points_spent",
    "paid_with_points",
    "claimed",
    "returns",
    "returned",
)
POINT_SUMS = ("issued", "reversed", "redeemed", "refunded", "expired", "adjusted")
# Profiles that are no longer a person of their own: merged into another, or erased.
GONE_STATUSES = ("merged", "erased")
# A purchase returned in full does not make its member active (as in the member facts).
COUNTED = or_(purchases_t.c.total == 0, purchases_t.c.returned_amount < purchases_t.c.total)


@dataclass(frozen=True)
class DayKey:
    day: date
    store: str
    channel: str
    tier: str
    member: bool


@dataclass(frozen=True)
class ReturnFacts:
    occurred_at: datetime
    created_at: datetime
    amount: int


@dataclass(frozen=True)
class PurchaseFacts:
    """What a return or a claim needs of the purchase it names (a claim: its returns)."""

    store: str
    channel: str
    tier: str
    discount: int
    points_spent: int
    returns: list[ReturnFacts] = field(default_factory=list)


@dataclass(frozen=True)
class MemberRange:
    """The program's members with ``after < id <= upto`` (``after`` None: from the first)."""

    after: UUID | None
    upto: UUID


def local_day(conn: AsyncConnection, column: Any, zone: str) -> Any:
    """The program's local day of an instant column, as a date."""
    if conn.dialect.name == "postgresql":
        return func.date(func.timezone(zone, column))
    spans = utc_offsets(zone)

    def moved(seconds: int) -> Any:
        return func.date(column, f"{seconds:+d} seconds")

    if len(spans) == 1:
        return type_coerce(moved(spans[0][1]), Date())
    # Newest first: most rows are recent, and the first match ends the CASE.
    whens = [(column >= literal(start, Timestamp()), moved(off)) for start, off in spans[:0:-1]]
    return type_coerce(case(*whens, else_=moved(spans[0][1])), Date())


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


def _json_int(column: Any, key: str) -> Any:
    return func.coalesce(cast(column[key].as_string(), BigInteger), 0)


def _tier_of(column: Any) -> Any:
    """The tier a purchase's stored answer names ('' for none)."""
    return func.coalesce(column[("tier", "tier")].as_string(), "")


def _upsert(conn: AsyncConnection, target: Any, keys: Sequence[str], sums: Sequence[str]) -> Any:
    """An INSERT that adds to the row of its key when there is one."""
    maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert

    def build(statement: Any) -> Any:
        return statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: target.c[name] + statement.excluded[name] for name in sums},
        )

    return maker(target), build


# Rows per upsert statement: the drivers bind at most 32,767 parameters to one statement.
UPSERT_ROWS = 2000

# What ``KpiRepository.tuned`` sets on PostgreSQL for the statements inside it.
TUNED = {"plan_cache_mode": "force_custom_plan", "work_mem": "64MB", "jit": "off"}


@asynccontextmanager
async def tuned(conn: AsyncConnection) -> AsyncIterator[None]:
    """PostgreSQL, for the statements inside (set back after them, so the rest of the
    transaction is as it was): planned for their parameters' values — the engine plans
    every statement once, generically, which suits look-ups by key but can turn a
    program's aggregate into a nested loop over every member —, sorts and hashes in
    memory, no JIT (compiling these statements costs more than it saves)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    names = list(TUNED)
    before = (
        await conn.execute(
            select(*[func.current_setting(name).label(f"s{i}") for i, name in enumerate(names)])
        )
    ).one()
    await _settings(conn, TUNED)
    # Set back only after success: a failed statement aborts the transaction (or the
    # savepoint the worker runs a batch in), and its rollback undoes these settings too.
    yield
    await _settings(conn, dict(zip(names, before, strict=True)))


async def _settings(conn: AsyncConnection, values: dict[str, str]) -> None:
    await conn.execute(
        select(*[func.set_config(name, value, True) for name, value in values.items()])
    )


class KpiRepository:
    def tuned(self, conn: AsyncConnection) -> AbstractAsyncContextManager[None]:
        return tuned(conn)

    # --- kept by the consumer --------------------------------------------------------------

    async def add_days(
        self, conn: AsyncConnection, program_id: UUID, deltas: dict[DayKey, dict[str, int]]
    ) -> None:
        """Add each key's sums to its row, in key order (two workers' partitions touching
        the same rows take their locks in one order, so they never deadlock)."""
        if not deltas:
            return
        rows = [
            {
                "program_id": program_id,
                "day": key.day,
                "store": key.store,
                "channel": key.channel,
                "tier": key.tier,
                "member": key.member,
                **{name: sums.get(name, 0) for name in DAY_SUMS},
            }
            for key, sums in sorted(
                deltas.items(),
                key=lambda kv: (kv[0].day, kv[0].store, kv[0].channel, kv[0].tier, kv[0].member),
            )
        ]
        base, build = _upsert(
            conn, days_t, ("program_id", "day", "store", "channel", "tier", "member"), DAY_SUMS
        )
        await conn.execute(build(base.values(rows)))

    async def add_points(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        deltas: dict[tuple[date, str], dict[str, int]],
    ) -> None:
        if not deltas:
            return
        rows = [
            {
                "program_id": program_id,
                "day": day,
                "currency": currency,
                **{name: sums.get(name, 0) for name in POINT_SUMS},
            }
            for (day, currency), sums in sorted(deltas.items())
        ]
        base, build = _upsert(conn, points_t, ("program_id", "day", "currency"), POINT_SUMS)
        await conn.execute(build(base.values(rows)))

    async def purchase_facts(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        purchase_ids: Sequence[UUID],
        *,
        with_returns: Sequence[UUID] = (),
    ) -> dict[UUID, PurchaseFacts]:
        if not purchase_ids:
            return {}
        p, r = purchases_t.c, returns_t.c
        rows = await conn.execute(
            select(
                p.id,
                func.coalesce(p.store, ""),
                p.channel,
                _tier_of(p.answer),
                _json_int(p.payments, "discount"),
                _json_int(p.payments, "points_spent"),
            ).where(p.program_id == program_id, one_of(conn, p.id, purchase_ids))
        )
        found = {
            row[0]: PurchaseFacts(row[1], row[2], row[3], int(row[4]), int(row[5]))
            for row in rows.all()
        }
        if with_returns:
            returns = await conn.execute(
                select(r.purchase_id, r.occurred_at, r.created_at, r.amount)
                .where(r.program_id == program_id, one_of(conn, r.purchase_id, with_returns))
                .order_by(r.purchase_id, r.occurred_at)
            )
            for purchase_id, occurred_at, created_at, amount in returns.all():
                if purchase_id in found:
                    found[purchase_id].returns.append(
                        ReturnFacts(occurred_at, created_at, int(amount))
                    )
        return found

    async def refresh_months(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        zone: str,
        scope: Sequence[UUID] | MemberRange,
    ) -> int:
        """Work the month masks of the members in ``scope`` out again from their purchases
        (members left without purchases lose their rows)."""
        where = self._members(conn, months_t.c.member_id, scope)
        await conn.execute(delete(months_t).where(months_t.c.program_id == program_id, *where))
        p = purchases_t.c
        day = local_day(conn, p.occurred_at, zone)
        days = (
            select(p.member_id.label("member_id"), day.label("day"))
            .where(p.program_id == program_id, *self._members(conn, p.member_id, scope))
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
        counted = [p.program_id == program_id, COUNTED, *self._members(conn, p.member_id, scope)]
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
            .where(m.program_id == program_id, *self._members(conn, m.id, scope))
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
        base, _ = _upsert(conn, members_kpi_t, ("member_id",), ())
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
        ).where(m.program_id == program_id, *self._members(conn, m.id, scope), true())
        maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        columns = ["member_id", "program_id", "gone", "tier", "joined_at", "days"]
        await conn.execute(
            maker(members_kpi_t)
            .from_select(columns, placeholders)
            .on_conflict_do_nothing(index_elements=["member_id"])
        )
        await conn.execute(
            select(k.member_id)
            .where(k.program_id == program_id, *self._members(conn, k.member_id, scope))
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
            k.program_id == program_id, *self._members(conn, k.member_id, scope)
        )
        rows = (await conn.execute(query)).all()
        months = await conn.execute(
            select(mm.member_id, mm.era, mm.active, mm.multi, mm.first_day, mm.tier).where(
                mm.program_id == program_id, *self._members(conn, mm.member_id, scope)
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
            base, build = _upsert(conn, tier_days_t, ("program_id", "day", "tier"), DAY_COLUMNS)
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
            base, build = _upsert(conn, buyer_months_t, keys, ("members",))
            for start in range(0, len(rows), UPSERT_ROWS):
                await conn.execute(build(base.values(rows[start : start + UPSERT_ROWS])))

    # --- rebuilt -----------------------------------------------------------------------------

    def _members(
        self, conn: AsyncConnection, column: Any, scope: Sequence[UUID] | MemberRange | None
    ) -> list[Any]:
        """``column`` within ``scope``; None: the purchases without a member."""
        if scope is None:
            return [column.is_(None)]
        if isinstance(scope, MemberRange):
            upto = [column <= scope.upto]
            return upto if scope.after is None else [column > scope.after, *upto]
        return [one_of(conn, column, scope)]

    async def clear(self, conn: AsyncConnection, program_id: UUID, since: date | None) -> None:
        """Delete the program's daily rows (from ``since`` on) before a rebuild; a whole
        rebuild (``since`` None) deletes its member rows and the sums of them too, which it
        then adds up again member by member."""
        for target in (days_t, points_t):
            where = [target.c.program_id == program_id]
            if since is not None:
                where.append(target.c.day >= since)
            await conn.execute(delete(target).where(*where))
        if since is None:
            for target in (members_kpi_t, months_t, tier_days_t, buyer_months_t):
                await conn.execute(delete(target).where(target.c.program_id == program_id))

    async def rebuild_checks(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        zone: str,
        scope: MemberRange | None,
        since: datetime | None,
    ) -> None:
        """Add the checks and returns of the members in ``scope`` (None: the purchases
        without a member) that occurred from ``since`` on to the daily rows."""
        p, r = purchases_t.c, returns_t.c
        member = p.member_id.is_not(None)
        day = local_day(conn, p.occurred_at, zone)
        spent = _json_int(p.payments, "points_spent")
        purchases = select(
            day.label("day"),
            func.coalesce(p.store, "").label("store"),
            p.channel.label("channel"),
            case((member, _tier_of(p.answer)), else_="").label("tier"),
            member.label("member"),
            literal(1).label("purchases"),
            p.total.label("revenue"),
            _json_int(p.payments, "discount").label("discount"),
            spent.label("points_spent"),
            case((spent > 0, 1), else_=0).label("paid_with_points"),
            self._claimed(conn).label("claimed"),
            literal(0).label("returns"),
            literal(0).label("returned"),
        ).where(
            p.program_id == program_id,
            *self._members(conn, p.member_id, scope),
            *([] if since is None else [p.occurred_at >= literal(since, Timestamp())]),
        )
        returned_by_member = r.member_id.is_not(None)
        returns = (
            select(
                local_day(conn, r.occurred_at, zone).label("day"),
                func.coalesce(p.store, "").label("store"),
                p.channel.label("channel"),
                case((returned_by_member, _tier_of(p.answer)), else_="").label("tier"),
                returned_by_member.label("member"),
                literal(0),
                literal(0),
                literal(0),
                literal(0),
                literal(0),
                literal(0),
                literal(1),
                r.amount,
            )
            .select_from(returns_t.join(purchases_t, p.id == r.purchase_id))
            .where(
                r.program_id == program_id,
                *self._members(conn, r.member_id, scope),
                *([] if since is None else [r.occurred_at >= literal(since, Timestamp())]),
            )
        )
        rows = purchases.union_all(returns).subquery()
        keys = [rows.c.day, rows.c.store, rows.c.channel, rows.c.tier, rows.c.member]
        source = (
            select(
                literal(program_id),
                *keys,
                *[cast(func.sum(rows.c[name]), BigInteger) for name in DAY_SUMS],
            )
            .group_by(*keys)
            .order_by(*keys)
            .where(true())  # SQLite reads an INSERT … SELECT … ON CONFLICT ambiguously
        )
        base, build = _upsert(
            conn, days_t, ("program_id", "day", "store", "channel", "tier", "member"), DAY_SUMS
        )
        columns = ["program_id", "day", "store", "channel", "tier", "member", *DAY_SUMS]
        await conn.execute(build(base.from_select(columns, source)))

    def _claimed(self, conn: AsyncConnection) -> Any:
        """1 for a purchase made without a card and claimed by a member since."""
        return case((purchases_t.c.claimed_at.is_not(None), 1), else_=0)

    async def rebuild_points(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        zone: str,
        scope: MemberRange,
        since: datetime | None,
    ) -> None:
        """Add the points moved on the program's accounts by the entries of the members in
        ``scope`` (from ``since`` on) to the daily rows."""
        e, p = entries_t.c, postings_t.c
        amount, account = p.amount, p.account

        def summed(condition: Any, value: Any) -> Any:
            return cast(func.sum(case((condition, value), else_=0)), BigInteger)

        day = local_day(conn, e.occurred_at, zone).label("day")
        rows = (
            select(day, p.currency.label("currency"), account, amount)
            .select_from(entries_t.join(postings_t, p.entry_id == e.id))
            .where(
                e.program_id == program_id,
                *self._members(conn, e.member_id, scope),
                account.in_(("issued", "redeemed", "expired", "adjustments")),
                *([] if since is None else [e.occurred_at >= literal(since, Timestamp())]),
            )
            .subquery()
        )
        a, v = rows.c.account, rows.c.amount
        # The program's accounts are the other side of the members': points leave
        # ``issued`` when the rules credit them and come back to it when a return takes
        # them back; they arrive in ``redeemed`` when spent and leave it when refunded.
        source = (
            select(
                literal(program_id),
                rows.c.day,
                rows.c.currency,
                summed((a == "issued") & (v < 0), -v),
                summed((a == "issued") & (v > 0), v),
                summed((a == "redeemed") & (v > 0), v),
                summed((a == "redeemed") & (v < 0), -v),
                summed(a == "expired", v),
                summed(a == "adjustments", -v),
            )
            .group_by(rows.c.day, rows.c.currency)
            .order_by(rows.c.day, rows.c.currency)
            .where(true())
        )
        base, build = _upsert(conn, points_t, ("program_id", "day", "currency"), POINT_SUMS)
        columns = ["program_id", "day", "currency", *POINT_SUMS]
        await conn.execute(build(base.from_select(columns, source)))


kpi_repository = KpiRepository()
