"""Every query of member facts: the daily buckets and the facts rows, rebuilt set-wise
(one statement per table, for the members of a batch of events or a range of the
program's members), the stored windows moved on, RFM scores, and reading one member's
facts."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Date,
    Integer,
    Uuid,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.crm.domain import RFM_GRID, STORED_WINDOWS, TOP, rfm_ranks, window_start
from kopilka.kit.sql import one_of
from kopilka.kit.timestamps import Timestamp
from kopilka.models import Member, MemberDay, MemberFact, Purchase, PurchaseLine, PurchaseReturn
from kopilka.models.base import table

facts_t = table(MemberFact)
days_t = table(MemberDay)
purchases_t = table(Purchase)
lines_t = table(PurchaseLine)
returns_t = table(PurchaseReturn)
members_t = table(Member)

# A purchase counts (first, last, number of purchases) unless it was returned in full.
COUNTED = or_(purchases_t.c.total == 0, purchases_t.c.returned_amount < purchases_t.c.total)
WINDOW_COLUMNS = tuple(
    f"{measure}_{w.suffix}" for w in STORED_WINDOWS for measure in ("purchases", "spend")
)
UPDATED = (
    "first_purchase_at",
    "last_purchase_at",
    "purchases",
    "spend",
    "returns",
    "returned",
    *WINDOW_COLUMNS,
    "windows_on",
    "windows_until",
    "categories",
    "stores",
    "updated_at",
)


# What ``CrmRepository.tuned`` sets on PostgreSQL.
TUNED = {"plan_cache_mode": "force_custom_plan", "work_mem": "64MB", "jit": "off"}


@dataclass(frozen=True)
class MemberRange:
    """The program's members with ``after < id <= upto`` (``after`` None: from the first):
    a batch of a whole-program rebuild."""

    after: UUID | None
    upto: UUID


# Whose facts a statement works on: these members, a range of them, or the whole program.
Scope = Sequence[UUID] | MemberRange | None


@dataclass(frozen=True)
class RfmCutoffs:
    """For each measure, the values that scores 2, 3, 4 and 5 start at (ascending); none
    when no member is scored."""

    scored: int
    recency: list[Any]
    frequency: list[Any]
    monetary: list[Any]


@dataclass(frozen=True)
class FactsRow:
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    purchases: int
    spend: int
    returns: int
    returned: int
    categories: list[Any]
    stores: list[Any]
    rfm_recency: int | None
    rfm_frequency: int | None
    rfm_monetary: int | None
    rfm_group: str | None
    rfm_at: datetime | None


def day_of(conn: AsyncConnection, column: Any) -> Any:
    """The UTC date of an instant column."""
    if conn.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def day_plus(conn: AsyncConnection, day: Any, days: int) -> Any:
    """A date column moved on by a number of days."""
    if conn.dialect.name == "postgresql":
        return day + literal(days, Integer())
    return func.date(day, f"+{days} days", type_=Date())


def _empty_list(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        return text("'[]'::jsonb")
    return func.json("[]")


def _pairs(conn: AsyncConnection, key: Any, spend: Any) -> Any:
    """``[[key, spend], …]`` of a group, as JSON (read back sorted: see ``top_of``)."""
    if conn.dialect.name == "postgresql":
        return func.jsonb_agg(
            aggregate_order_by(func.jsonb_build_array(key, spend), spend.desc(), key)
        )
    return func.json_group_array(func.json_array(key, spend))


class CrmRepository:
    def _scope(self, column: Any, conn: AsyncConnection, ids: Scope) -> list[Any]:
        if ids is None:
            # Every member's rows: purchases (and returns) without a member are no one's.
            return [column.is_not(None)]
        if isinstance(ids, MemberRange):
            upto = [column <= ids.upto]
            return upto if ids.after is None else [column > ids.after, *upto]
        return [one_of(conn, column, ids)]

    @asynccontextmanager
    async def tuned(self, conn: AsyncConnection) -> AsyncIterator[None]:
        """PostgreSQL, for the statements inside (set back after them, so nothing else of
        the transaction is changed): planned for their parameters' values (the engine plans
        every statement once, generically, which suits the purchase path's look-ups by key
        but not a range over a batch of members or a cut-off); a batch's sorts and hashes in
        memory (the default 4 MB spills a 20,000-member batch to disk); no JIT (compiling
        these statements costs more than it saves)."""
        if conn.dialect.name != "postgresql":
            yield
            return
        names = ", ".join(f"'{name}'" for name in TUNED)
        before = (
            await conn.execute(
                text(
                    "SELECT name, setting || coalesce(unit, '') FROM pg_settings"
                    f" WHERE name IN ({names})"
                )
            )
        ).all()
        await self._settings(conn, TUNED)
        try:
            yield
        finally:
            await self._settings(conn, dict((name, value) for name, value in before))

    async def _settings(self, conn: AsyncConnection, values: dict[str, str]) -> None:
        parts = ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(values)))
        params: dict[str, str] = {}
        for i, (name, value) in enumerate(values.items()):
            params[f"n{i}"], params[f"v{i}"] = name, value
        await conn.execute(text(f"SELECT {parts}"), params)

    async def rebuild_days(self, conn: AsyncConnection, program_id: UUID, ids: Scope) -> int:
        """The daily buckets of the program's members (or of ``ids``), from their purchases."""
        await conn.execute(
            delete(days_t).where(
                days_t.c.program_id == program_id, *self._scope(days_t.c.member_id, conn, ids)
            )
        )
        p = purchases_t.c
        day = day_of(conn, p.occurred_at)
        source = (
            select(
                p.member_id,
                day,
                p.program_id,
                func.sum(case((COUNTED, 1), else_=0)),
                func.sum(p.total - p.returned_amount),
            )
            .where(p.program_id == program_id, *self._scope(p.member_id, conn, ids))
            .group_by(p.member_id, day, p.program_id)
            # In key order: the primary key grows at its end.
            .order_by(p.member_id, day)
        )
        result = await conn.execute(
            insert(days_t).from_select(
                ["member_id", "day", "program_id", "purchases", "spend"], source
            )
        )
        return max(result.rowcount or 0, 0)

    def _top(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        ids: Scope,
        key: Any,
        spend: Any,
        name: str,
        *,
        lines: bool,
    ) -> Any:
        p = purchases_t.c
        sums = select(p.member_id, key.label("item"), func.sum(spend).label("amount")).where(
            p.program_id == program_id, key.is_not(None), *self._scope(p.member_id, conn, ids)
        )
        if lines:
            sums = sums.select_from(lines_t.join(purchases_t, p.id == lines_t.c.purchase_id))
        grouped = sums.group_by(p.member_id, key).subquery()
        ranked = select(
            grouped,
            func.row_number()
            .over(
                partition_by=grouped.c.member_id,
                order_by=(grouped.c.amount.desc(), grouped.c.item),
            )
            .label("place"),
        ).subquery()
        return (
            select(ranked.c.member_id, _pairs(conn, ranked.c.item, ranked.c.amount).label("pairs"))
            .where(ranked.c.place <= TOP, ranked.c.amount > 0)
            .group_by(ranked.c.member_id)
            .cte(name)
        )

    def _windows(
        self, conn: AsyncConnection, program_id: UUID, today: date, where: Sequence[Any]
    ) -> Any:
        """Per member with purchase days in the widest window (as of ``today``): the stored
        windows' purchases and spend, and ``until``, the first day on which one of those
        days leaves the narrowest window that holds it."""
        d = days_t.c
        columns: list[Any] = [d.member_id]
        for w in STORED_WINDOWS:
            inside = d.day >= window_start(today, w.days)
            columns.append(
                func.sum(case((inside, d.purchases), else_=0)).label(f"purchases_{w.suffix}")
            )
            columns.append(func.sum(case((inside, d.spend), else_=0)).label(f"spend_{w.suffix}"))
        leaves = case(
            *[
                (d.day >= window_start(today, w.days), day_plus(conn, d.day, w.days))
                for w in STORED_WINDOWS[:-1]
            ],
            else_=day_plus(conn, d.day, STORED_WINDOWS[-1].days),
        )
        columns.append(func.min(leaves).label("until"))
        widest = window_start(today, STORED_WINDOWS[-1].days)
        return (
            select(*columns)
            .where(d.program_id == program_id, d.day >= widest, *where)
            .group_by(d.member_id)
        )

    async def rebuild_facts(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        ids: Scope,
        today: date,
        now: datetime,
    ) -> int:
        """Upsert the facts rows of every member with purchases (or of ``ids``) in one
        statement, windows as of ``today``; RFM scores are kept (the daily job moves them)."""
        p, r, ln = purchases_t.c, returns_t.c, lines_t.c
        agg = (
            select(
                p.member_id,
                func.min(case((COUNTED, p.occurred_at))).label("first"),
                func.max(case((COUNTED, p.occurred_at))).label("last"),
                func.sum(case((COUNTED, 1), else_=0)).label("purchases"),
                func.sum(p.total - p.returned_amount).label("spend"),
                func.sum(p.returned_amount).label("returned"),
            )
            .where(p.program_id == program_id, *self._scope(p.member_id, conn, ids))
            .group_by(p.member_id)
            .cte("agg")
        )
        returns = (
            select(r.member_id, func.count().label("n"))
            .where(r.program_id == program_id, *self._scope(r.member_id, conn, ids))
            .group_by(r.member_id)
            .cte("ret")
        )
        window = self._windows(
            conn, program_id, today, self._scope(days_t.c.member_id, conn, ids)
        ).cte("win")
        # A line's share of what the purchase kept after returns (returns by amount name no
        # lines), floored.
        net_line = case(
            (p.total > 0, ln.amount * (p.total - p.returned_amount) // p.total), else_=ln.amount
        )
        categories = self._top(conn, program_id, ids, ln.category, net_line, "cats", lines=True)
        stores = self._top(
            conn, program_id, ids, p.store, p.total - p.returned_amount, "stores", lines=False
        )
        empty = _empty_list(conn)
        at = literal(now, Timestamp())
        source = (
            select(
                agg.c.member_id,
                literal(program_id, Uuid()),
                agg.c.first,
                agg.c.last,
                agg.c.purchases,
                agg.c.spend,
                func.coalesce(returns.c.n, 0),
                agg.c.returned,
                *(func.coalesce(window.c[name], 0) for name in WINDOW_COLUMNS),
                literal(today, Date()),
                window.c.until,
                func.coalesce(categories.c.pairs, empty),
                func.coalesce(stores.c.pairs, empty),
                at,
            )
            .select_from(
                agg.outerjoin(returns, returns.c.member_id == agg.c.member_id)
                .outerjoin(window, window.c.member_id == agg.c.member_id)
                .outerjoin(categories, categories.c.member_id == agg.c.member_id)
                .outerjoin(stores, stores.c.member_id == agg.c.member_id)
            )
            # SQLite reads an INSERT … SELECT … ON CONFLICT without a WHERE ambiguously.
            .where(true())
        )
        columns = [
            "member_id",
            "program_id",
            "first_purchase_at",
            "last_purchase_at",
            "purchases",
            "spend",
            "returns",
            "returned",
            *WINDOW_COLUMNS,
            "windows_on",
            "windows_until",
            "categories",
            "stores",
            "updated_at",
        ]
        maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        statement = maker(facts_t).from_select(columns, source)
        statement = statement.on_conflict_do_update(
            index_elements=["member_id"],
            set_={name: statement.excluded[name] for name in UPDATED},
        )
        await conn.execute(statement)
        # Not the statement's row count: SQLite reports none for an upsert from a SELECT.
        found = await conn.scalar(
            select(func.count())
            .select_from(facts_t)
            .where(
                facts_t.c.program_id == program_id,
                facts_t.c.updated_at == at,
                *self._scope(facts_t.c.member_id, conn, ids),
            )
        )
        return int(found or 0)

    async def move_windows(self, conn: AsyncConnection, program_id: UUID, today: date) -> int:
        """Work the stored windows out again, as of ``today``, for the members whose
        ``windows_until`` has come (a purchase day left a window): the others' are exact."""
        f = facts_t.c
        due = [f.program_id == program_id, f.windows_until <= today]
        fresh = self._windows(
            conn, program_id, today, [days_t.c.member_id.in_(select(f.member_id).where(*due))]
        ).subquery()
        moved = await conn.execute(
            update(facts_t)
            .where(f.member_id == fresh.c.member_id)
            .values(
                {name: fresh.c[name] for name in WINDOW_COLUMNS}
                | {"windows_on": today, "windows_until": fresh.c.until}
            )
        )
        # Whoever is still due has no purchase day left in any window (a moved row's new
        # ``windows_until`` is after today).
        emptied = await conn.execute(
            update(facts_t)
            .where(*due)
            .values(
                {name: 0 for name in WINDOW_COLUMNS} | {"windows_on": today, "windows_until": None}
            )
        )
        return max(moved.rowcount or 0, 0) + max(emptied.rowcount or 0, 0)

    def _scored(self, conn: AsyncConnection, ids: Scope = None) -> Any:
        """Whether a facts row is scored for RFM: an active member with a counted purchase.
        The scope is repeated on the members' side, or PostgreSQL reads every member for a
        batch of a few."""
        f, m = facts_t.c, members_t.c
        active = exists(
            select(m.id).where(
                m.id == f.member_id, m.status == "active", *self._scope(m.id, conn, ids)
            )
        )
        return (f.purchases > 0) & active

    async def rfm_cutoffs(self, conn: AsyncConnection, program_id: UUID) -> RfmCutoffs:
        """The values each RFM score starts at, over the program's scored members: one sort
        per measure, so that scoring itself is a plain update of any batch of rows."""
        f = facts_t.c
        scope = [f.program_id == program_id, self._scored(conn)]
        counted = await conn.scalar(select(func.count()).select_from(facts_t).where(*scope))
        scored = int(counted or 0)
        if scored == 0:
            return RfmCutoffs(0, [], [], [])
        ranks = rfm_ranks(scored)
        found: list[list[Any]] = []
        for column in (f.last_purchase_at, f.purchases, f.spend):
            ranked = (
                select(column.label("value"), func.row_number().over(order_by=column).label("rank"))
                .where(*scope)
                .subquery()
            )
            rows = await conn.execute(
                select(ranked.c.rank, ranked.c.value).where(ranked.c.rank.in_(ranks))
            )
            at = {rank: value for rank, value in rows}
            found.append([at[r] for r in ranks])
        return RfmCutoffs(scored, *found)

    async def score_rfm(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        cutoffs: RfmCutoffs,
        ids: Scope,
        now: datetime,
    ) -> int:
        """Score the scored members of the scope against ``cutoffs``; the scope's other
        rows lose their scores. Two statements."""
        f = facts_t.c
        scope = [f.program_id == program_id, *self._scope(f.member_id, conn, ids)]
        scored = self._scored(conn, ids)
        await conn.execute(
            update(facts_t)
            .where(*scope, f.rfm_at.is_not(None), ~scored)
            .values(
                rfm_recency=None, rfm_frequency=None, rfm_monetary=None, rfm_group=None, rfm_at=None
            )
        )
        if cutoffs.scored == 0:
            return 0

        def score(column: Any, starts: list[Any]) -> Any:
            # Cut-offs ascend: the highest one reached gives the score.
            return case(
                *[(column >= start, 5 - n) for n, start in enumerate(reversed(starts))],
                else_=1,
            )

        r = score(f.last_purchase_at, cutoffs.recency)
        fr = score(f.purchases, cutoffs.frequency)
        group = case(
            *[(r.in_(sorted(rs)) & fr.in_(sorted(fs)), literal(g.value)) for g, rs, fs in RFM_GRID],
        )
        result = await conn.execute(
            update(facts_t)
            .where(*scope, scored)
            .values(
                rfm_recency=r,
                rfm_frequency=fr,
                rfm_monetary=score(f.spend, cutoffs.monetary),
                rfm_group=group,
                rfm_at=now,
            )
        )
        return max(result.rowcount or 0, 0)

    async def get(
        self, conn: AsyncConnection, program_id: UUID, member_id: UUID
    ) -> FactsRow | None:
        f = facts_t.c
        row = (
            await conn.execute(
                select(
                    f.first_purchase_at,
                    f.last_purchase_at,
                    f.purchases,
                    f.spend,
                    f.returns,
                    f.returned,
                    f.categories,
                    f.stores,
                    f.rfm_recency,
                    f.rfm_frequency,
                    f.rfm_monetary,
                    f.rfm_group,
                    f.rfm_at,
                ).where(f.member_id == member_id, f.program_id == program_id)
            )
        ).first()
        return FactsRow(**row._mapping) if row is not None else None

    async def window(
        self, conn: AsyncConnection, program_id: UUID, member_id: UUID, since: date
    ) -> tuple[int, int]:
        """Purchases and net spend of a member from ``since`` on."""
        d = days_t.c
        row = (
            await conn.execute(
                select(
                    func.coalesce(func.sum(d.purchases), 0), func.coalesce(func.sum(d.spend), 0)
                ).where(d.member_id == member_id, d.program_id == program_id, d.day >= since)
            )
        ).one()
        return int(row[0]), int(row[1])

    async def program_members(self, conn: AsyncConnection, program_id: UUID) -> int:
        """How many members the program has (for progress reports)."""
        found = await conn.scalar(
            select(func.count()).select_from(members_t).where(members_t.c.program_id == program_id)
        )
        return int(found or 0)


crm_repository = CrmRepository()
