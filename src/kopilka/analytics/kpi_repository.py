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

from kopilka.analytics.kpis import utc_offsets
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


def _json_int(column: Any, key: str) -> Any:
    return func.coalesce(cast(column[key].as_string(), BigInteger), 0)


def _tier_of(column: Any) -> Any:
    """The tier a purchase's stored answer names ('' for none)."""
    return func.coalesce(column[("tier", "tier")].as_string(), "")


def adding_upsert(
    conn: AsyncConnection, target: Any, keys: Sequence[str], sums: Sequence[str]
) -> Any:
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


def within(
    conn: AsyncConnection, column: Any, scope: Sequence[UUID] | MemberRange | None
) -> list[Any]:
    """``column`` within ``scope``; None: the purchases without a member."""
    if scope is None:
        return [column.is_(None)]
    if isinstance(scope, MemberRange):
        upto = [column <= scope.upto]
        return upto if scope.after is None else [column > scope.after, *upto]
    return [one_of(conn, column, scope)]


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
        base, build = adding_upsert(
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
        base, build = adding_upsert(conn, points_t, ("program_id", "day", "currency"), POINT_SUMS)
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

    # --- rebuilt -----------------------------------------------------------------------------

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
            *within(conn, p.member_id, scope),
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
                *within(conn, r.member_id, scope),
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
        base, build = adding_upsert(
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
                *within(conn, e.member_id, scope),
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
        base, build = adding_upsert(conn, points_t, ("program_id", "day", "currency"), POINT_SUMS)
        columns = ["program_id", "day", "currency", *POINT_SUMS]
        await conn.execute(build(base.from_select(columns, source)))


kpi_repository = KpiRepository()
