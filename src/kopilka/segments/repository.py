"""Every query of segments: predicates compiled to SQL (SQLAlchemy Core, the same on SQLite
and PostgreSQL), counts and pages of a definition, the segments and their membership.

A definition becomes one query; each predicate is a boolean expression about the row's
member, registered with :func:`kopilka.crm.predicates.compiles`:

- when every member the tree can hold for has a ``member_facts`` row (it asks for a
  purchase, a spend above 0, a last purchase, an RFM score), the query walks
  ``member_facts`` alone: ``SELECT member_id FROM member_facts WHERE program_id = :program
  AND <the tree>``, joining ``members`` only if the tree reads a profile column;
- otherwise ``SELECT members.id FROM members [LEFT JOIN member_facts] WHERE …``.

Relations to other tables (tier, consent, purchases) are correlated ``EXISTS``, which
PostgreSQL turns into semi- or anti-joins. Purchases and spend over the stored windows
(30, 90, 365 days) read ``member_facts`` columns while they are exact for today
(:meth:`SegmentRepository.windows_exact`); other windows sum the daily buckets
``member_days``, per member when a query walks few of them (a page, a batch of events),
and for the whole program at once otherwise. A range that 0 satisfies ("at most 2
purchases") also takes members with no purchases at all.
"""

import typing
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Numeric,
    and_,
    case,
    cast,
    column,
    delete,
    exists,
    extract,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.util import find_tables

from kopilka.crm.domain import stored_window
from kopilka.crm.predicates import COMPILERS, SqlContext, compiles
from kopilka.kit.sql import one_of
from kopilka.models import (
    Lot,
    Member,
    MemberBalance,
    MemberConsent,
    MemberDay,
    MemberFact,
    MemberTier,
    Purchase,
    PurchaseLine,
    Segment,
    SegmentMember,
)
from kopilka.models.base import table
from kopilka.segments import domain as d
from kopilka.segments.domain import (
    AllOf,
    AnyOf,
    Node,
    NotOf,
    day_start,
    predicates_of,
    years_before,
)

members_t = table(Member)
facts_t = table(MemberFact)
days_t = table(MemberDay)
purchases_t = table(Purchase)
lines_t = table(PurchaseLine)
tiers_t = table(MemberTier)
consents_t = table(MemberConsent)
balances_t = table(MemberBalance)
lots_t = table(Lot)
segments_t = table(Segment)
seg_members_t = table(SegmentMember)

COUNTED = or_(purchases_t.c.total == 0, purchases_t.c.returned_amount < purchases_t.c.total)


# --- compiling ---------------------------------------------------------------------------------


def compile_node(node: Node, ctx: SqlContext) -> ColumnElement[bool]:
    if isinstance(node, AllOf):
        return and_(*(compile_node(n, ctx) for n in node.items))
    if isinstance(node, AnyOf):
        return or_(*(compile_node(n, ctx) for n in node.items))
    if isinstance(node, NotOf):
        # Two-valued: a predicate that is unknown for a member (no city) is false, so its
        # negation holds for them.
        return not_(func.coalesce(compile_node(node.item, ctx), false()))
    compiler = COMPILERS.get(type(node).model_fields["type"].default)
    if compiler is None:
        raise LookupError(f"predicate {type(node).__name__} has no SQL compiler")
    compiled: ColumnElement[bool] = compiler(node, ctx)
    return compiled


def _b(expression: Any) -> ColumnElement[bool]:
    """A predicate's expression (its columns come typed ``Any`` through the context)."""
    return typing.cast(ColumnElement[bool], expression)


def _between(value: Any, low: int | None, high: int | None) -> ColumnElement[bool]:
    parts = []
    if low is not None:
        parts.append(value >= low)
    if high is not None:
        parts.append(value <= high)
    return and_(true(), *parts)


def _among(ctx: SqlContext, grouped: Any) -> ColumnElement[bool]:
    """The member is among those ``grouped`` (a query of member ids) finds. PostgreSQL:
    ``EXISTS``, which it plans as a semi-join (its negation an anti-join) that spills to
    disk if it must; ``NOT IN`` would be a hashed sub-plan that, once larger than
    ``work_mem``, is scanned again for every member. SQLite: ``IN``, which it indexes."""
    if ctx.dialect == "postgresql":
        found = grouped.subquery()
        return exists(select(1).select_from(found).where(found.c.member_id == ctx.member_id))
    return _b(ctx.member_id.in_(grouped))


def _aggregate(ctx: SqlContext, grouped: Any, value: Any, p: d.Ranged) -> ColumnElement[bool]:
    """Members whose aggregate ``value`` over ``grouped`` rows is in ``p``'s range; a range
    that holds for 0 also takes members with no rows."""
    if p.holds_for(0):
        return not_(_among(ctx, grouped.having(not_(_between(value, p.min, p.max)))))
    return _among(ctx, grouped.having(_between(value, p.min, p.max)))


def _facts_range(column: Any, p: d.Ranged) -> ColumnElement[bool]:
    """A ``member_facts`` column in ``p``'s range, a member without the row counting as 0.
    The column is compared bare when 0 is out of range, so that its index serves."""
    if p.holds_for(0):
        return or_(column.is_(None), _between(column, p.min, p.max))
    return _between(column, p.min, p.max)


def _measured(p: d.Purchases, count: Any, spend: Any, bare: bool) -> ColumnElement[bool]:
    """``p``'s measure of a count and a spend. ``bare``: facts columns (NULL without a
    row), compared so that their indexes serve."""
    if p.measure == "average_check":
        return and_(count > 0, _between(spend / func.nullif(count, 0), p.min, p.max))
    value = count if p.measure == "count" else spend
    return _facts_range(value, p) if bare else _between(value, p.min, p.max)


def _day_window(p: d.Windowed, ctx: SqlContext) -> list[ColumnElement[bool]]:
    parts = []
    first, last = p.first_day(ctx.today), p.last_day()
    if first is not None:
        parts.append(days_t.c.day >= first)
    if last is not None:
        parts.append(days_t.c.day <= last)
    return parts


def _time_window(p: d.Windowed, ctx: SqlContext, column_: Any) -> list[ColumnElement[bool]]:
    parts = []
    first, last = p.first_day(ctx.today), p.last_day()
    if first is not None:
        parts.append(column_ >= day_start(first))
    if last is not None:
        parts.append(column_ < day_start(last + timedelta(days=1)))
    return parts


@compiles("profile_present")
def _profile_present(p: d.ProfilePresent, ctx: SqlContext) -> ColumnElement[bool]:
    value = ctx.members.c[p.field]
    filled = value.is_not(None)
    if p.field != "birthday":
        filled = and_(filled, value != "")
    return _b(filled if p.present else not_(filled))


@compiles("profile")
def _profile(p: d.Profile, ctx: SqlContext) -> ColumnElement[bool]:
    return ctx.members.c[p.field].in_(p.one_of)  # type: ignore[no-any-return]


@compiles("tenure_days")
def _tenure(p: d.TenureDays, ctx: SqlContext) -> ColumnElement[bool]:
    return _days_ago(ctx.members.c.created_at, p, ctx.now)


def _days_ago(moment: Any, p: d.Ranged, now: datetime) -> ColumnElement[bool]:
    """Whole days between ``moment`` and now in ``p``'s range (NULL: no match)."""
    parts = [moment.is_not(None)]
    if p.min is not None:
        parts.append(moment <= now - timedelta(days=p.min))
    if p.max is not None:
        parts.append(moment > now - timedelta(days=p.max + 1))
    return and_(*parts)


@compiles("joined")
def _joined(p: d.Joined, ctx: SqlContext) -> ColumnElement[bool]:
    created = ctx.members.c.created_at
    parts = []
    if p.since is not None:
        parts.append(created >= day_start(p.since))
    if p.until is not None:
        parts.append(created < day_start(p.until + timedelta(days=1)))
    return and_(*parts)


@compiles("attribute")
def _attribute(p: d.Attribute, ctx: SqlContext) -> ColumnElement[bool]:
    attrs = ctx.members.c.attributes
    if ctx.dialect == "postgresql":
        doc = cast(attrs, JSONB)
        kind = func.jsonb_typeof(doc[p.name])
        raw = doc[p.name].astext
        numbers, texts = ["number"], ["string"]

        def boolean(value: bool) -> ColumnElement[bool]:
            return and_(kind == "boolean", raw == ("true" if value else "false"))
    else:
        path = f'$."{p.name}"'
        kind = func.json_type(attrs, path)
        raw = func.json_extract(attrs, path)
        numbers, texts = ["integer", "real"], ["text"]

        def boolean(value: bool) -> ColumnElement[bool]:
            return _b(kind == ("true" if value else "false"))

    # CASE, not AND: PostgreSQL may cast before it tests the type.
    number = case((kind.in_(numbers), cast(raw, Numeric())))
    if p.exists is not None:
        present = and_(kind.is_not(None), kind != "null")
        return present if p.exists else not_(present)
    if p.min is not None or p.max is not None:
        return and_(number.is_not(None), _between(number, p.min, p.max))
    values = [p.equals] if p.equals is not None else list(p.one_of or [])
    tests: list[ColumnElement[bool]] = []
    for value in values:
        if isinstance(value, bool):
            tests.append(boolean(value))
        elif isinstance(value, int):
            tests.append(number == value)
        else:
            tests.append(and_(kind.in_(texts), raw == value))
    return or_(*tests)


@compiles("age")
def _age(p: d.Age, ctx: SqlContext) -> ColumnElement[bool]:
    birthday = ctx.members.c.birthday
    parts = [birthday.is_not(None)]
    if p.min is not None:
        parts.append(birthday <= years_before(ctx.today, p.min))
    if p.max is not None:
        parts.append(birthday > years_before(ctx.today, p.max + 1))
    return and_(*parts)


@compiles("birthday_month")
def _birthday_month(p: d.BirthdayMonth, ctx: SqlContext) -> ColumnElement[bool]:
    return extract("month", ctx.members.c.birthday).in_(sorted(set(p.months)))


@compiles("consent")
def _consent(p: d.Consent, ctx: SqlContext) -> ColumnElement[bool]:
    c = consents_t.c
    granted = exists(
        select(1).where(
            c.member_id == ctx.member_id,
            c.channel == p.channel,
            c.purpose == p.purpose,
            c.status == "granted",
        )
    )
    return granted if p.granted else not_(granted)


@compiles("tier")
def _tier(p: d.Tier, ctx: SqlContext) -> ColumnElement[bool]:
    t = tiers_t.c
    has = exists(select(1).where(t.member_id == ctx.member_id, t.tier.in_(p.tiers)))
    if ctx.entry_tier is not None and ctx.entry_tier in p.tiers:
        return or_(has, not_(exists(select(1).where(t.member_id == ctx.member_id))))
    return has


@compiles("tags")
def _tags(p: d.Tags, ctx: SqlContext) -> ColumnElement[bool]:
    tags = ctx.members.c.tags
    wanted = sorted(set(p.tags))
    if ctx.dialect == "postgresql":
        as_jsonb = cast(tags, JSONB)
        if p.all:
            return _b(as_jsonb.op("@>")(cast(wanted, JSONB)))
        return or_(*(as_jsonb.op("@>")(cast([tag], JSONB)) for tag in wanted))
    each = func.json_each(tags).table_valued("value")
    if p.all:
        found = select(func.count(func.distinct(column("value")))).select_from(each)
        return found.where(column("value").in_(wanted)).scalar_subquery() == len(wanted)
    return exists(select(1).select_from(each).where(column("value").in_(wanted)))


@compiles("purchases")
def _purchases(p: d.Purchases, ctx: SqlContext) -> ColumnElement[bool]:
    f = ctx.facts.c
    if not p.windowed:
        return _measured(p, f.purchases, f.spend, True)
    stored = stored_window(p.last_days) if p.last_days is not None else None
    if stored is not None and ctx.windows:
        count, spend = f[f"purchases_{stored.suffix}"], f[f"spend_{stored.suffix}"]
        return _measured(p, count, spend, True)
    c = days_t.c
    window = [c.program_id == ctx.program_id, *_day_window(p, ctx)]
    if ctx.per_member:

        def total(column: Any) -> Any:
            found = select(func.sum(column)).where(c.member_id == ctx.member_id, *window)
            return func.coalesce(found.scalar_subquery(), 0)

        return _measured(p, total(c.purchases), total(c.spend), False)
    grouped = select(c.member_id).where(*window).group_by(c.member_id)
    if p.measure == "count":
        return _aggregate(ctx, grouped, func.sum(c.purchases), p)
    if p.measure == "spend":
        return _aggregate(ctx, grouped, func.sum(c.spend), p)
    average = func.sum(c.spend) / func.nullif(func.sum(c.purchases), 0)
    having = and_(func.sum(c.purchases) > 0, _between(average, p.min, p.max))
    return _among(ctx, grouped.having(having))


@compiles("bought")
def _bought(p: d.Bought, ctx: SqlContext) -> ColumnElement[bool]:
    pc, lc = purchases_t.c, lines_t.c
    # Correlated on the member: the purchases' (member_id, occurred_at) index serves each
    # member, and PostgreSQL may still plan the whole as one semi- or anti-join.
    scope = [
        pc.member_id == ctx.member_id,
        pc.program_id == ctx.program_id,
        COUNTED,
        *_time_window(p, ctx, pc.occurred_at),
    ]
    tests = []
    if p.stores:
        tests.append(exists(select(1).where(*scope, pc.store.in_(p.stores))))
    line_tests = []
    if p.categories:
        line_tests.append(lc.category.in_(p.categories))
    if p.skus:
        line_tests.append(lc.sku.in_(p.skus))
    if line_tests:
        tests.append(
            exists(
                select(1)
                .select_from(lines_t.join(purchases_t, pc.id == lc.purchase_id))
                .where(*scope, or_(*line_tests))
            )
        )
    bought = or_(*tests)
    return not_(bought) if p.never else bought


@compiles("days_since_last_purchase")
def _days_since(p: d.DaysSinceLastPurchase, ctx: SqlContext) -> ColumnElement[bool]:
    return _days_ago(ctx.facts.c.last_purchase_at, p, ctx.now)


@compiles("points_balance")
def _balance(p: d.PointsBalance, ctx: SqlContext) -> ColumnElement[bool]:
    b = balances_t.c
    available = (
        select(b.available)
        .where(b.member_id == ctx.member_id, b.currency == (p.currency or ctx.points_currency))
        .scalar_subquery()
    )
    return _between(func.coalesce(available, 0), p.min, p.max)


@compiles("points_expiring")
def _expiring(p: d.PointsExpiring, ctx: SqlContext) -> ColumnElement[bool]:
    lot = lots_t.c
    expiring = (
        select(func.coalesce(func.sum(lot.remaining), 0))
        .where(
            lot.member_id == ctx.member_id,
            lot.currency == (p.currency or ctx.points_currency),
            lot.remaining > 0,
            lot.status == "available",
            lot.expires_at > ctx.now,
            lot.expires_at <= ctx.now + timedelta(days=p.within_days),
        )
        .scalar_subquery()
    )
    return expiring >= p.min


@compiles("rfm_group")
def _rfm_group(p: d.RfmGroups, ctx: SqlContext) -> ColumnElement[bool]:
    return ctx.facts.c.rfm_group.in_([g.value for g in p.groups])  # type: ignore[no-any-return]


@compiles("rfm_score")
def _rfm_score(p: d.RfmScore, ctx: SqlContext) -> ColumnElement[bool]:
    value = ctx.facts.c[f"rfm_{p.score}"]
    return and_(value.is_not(None), _between(value, p.min, p.max))


# --- storage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a definition is compiled for."""

    program_id: UUID
    now: datetime
    entry_tier: str | None
    points_currency: str


def _facts_only(node: Node) -> bool:
    """Whether every member the tree holds for has a ``member_facts`` row (one per member
    with purchases, written with the buckets): then a query need not visit the others."""
    if isinstance(node, AllOf):
        return any(_facts_only(n) for n in node.items)
    if isinstance(node, AnyOf):
        return all(_facts_only(n) for n in node.items)
    if isinstance(node, NotOf):
        return False
    if isinstance(node, d.Purchases):
        return node.measure == "average_check" or not node.holds_for(0)
    # ``bought`` reads purchases as they are, which the facts may not show yet.
    return isinstance(node, d.DaysSinceLastPurchase | d.RfmGroups | d.RfmScore)


def _reads_stored_windows(node: Node) -> bool:
    return any(
        isinstance(p, d.Purchases) and p.last_days is not None and stored_window(p.last_days)
        for p in predicates_of(node)
    )


@asynccontextmanager
async def planned_for_values(conn: AsyncConnection) -> AsyncIterator[None]:
    """PostgreSQL: plan the statements inside for their parameters' values, and set the
    session's way back after them. The engine plans every statement once, generically, which
    suits the purchase path's look-ups by key; a definition's ranges and sets are only as
    selective as their values say ("spend ≥ 3,000.00 in 90 days" is a tenth of the
    members, a generic plan guesses a third), and a wrong guess turns an index range into a
    scan of the table (1,000,000 members: a 0.3 s probe instead of 0.05 ms)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    before = await conn.scalar(text("SELECT current_setting('plan_cache_mode')"))
    await conn.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"))
    try:
        yield
    finally:
        await conn.execute(
            text("SELECT set_config('plan_cache_mode', :before, true)"), {"before": before}
        )


@dataclass(frozen=True)
class Matching:
    """A definition's query (one column, the member id) and its id column, to order and
    restrict by."""

    query: Any
    id: Any


class SegmentRepository:
    async def windows_exact(self, conn: AsyncConnection, program_id: UUID, now: datetime) -> bool:
        """Whether the stored windows of every member of the program are exact today: no
        row's ``windows_until`` has come (the daily facts job moves those on)."""
        f = facts_t.c
        async with planned_for_values(conn):
            due = await conn.scalar(
                select(f.member_id)
                .where(f.program_id == program_id, f.windows_until <= now.date())
                .limit(1)
            )
        return due is None

    async def matching(
        self,
        conn: AsyncConnection,
        scope: Scope,
        node: Node,
        member_ids: Sequence[UUID] | None = None,
        *,
        per_member: bool = False,
    ) -> Matching:
        """The program's members the definition holds for (among ``member_ids``)."""
        windows = _reads_stored_windows(node) and await self.windows_exact(
            conn, scope.program_id, scope.now
        )
        per_member = per_member or member_ids is not None
        facts_only = _facts_only(node)
        ctx = SqlContext(
            program_id=scope.program_id,
            now=scope.now,
            today=scope.now.date(),
            dialect=conn.dialect.name,
            entry_tier=scope.entry_tier,
            points_currency=scope.points_currency,
            member_id=facts_t.c.member_id if facts_only else members_t.c.id,
            members=members_t,
            facts=facts_t,
            windows=windows,
            per_member=per_member,
        )
        condition = compile_node(node, ctx)
        used = set(find_tables(condition, check_columns=True))
        if facts_only:
            source: Any = facts_t
            if members_t in used:
                source = facts_t.join(members_t, members_t.c.id == facts_t.c.member_id)
            where = facts_t.c.program_id == scope.program_id
        else:
            source = members_t
            if facts_t in used:
                source = members_t.outerjoin(facts_t, facts_t.c.member_id == members_t.c.id)
            where = members_t.c.program_id == scope.program_id
        id_ = ctx.member_id
        query = select(id_.label("id")).select_from(source).where(where, condition)
        if member_ids is not None:
            query = query.where(one_of(conn, id_, member_ids))
        return Matching(query, id_)

    async def count(self, conn: AsyncConnection, scope: Scope, node: Node) -> int:
        found = (await self.matching(conn, scope, node)).query.subquery()
        async with planned_for_values(conn):
            return int(await conn.scalar(select(func.count()).select_from(found)) or 0)

    async def page(
        self, conn: AsyncConnection, scope: Scope, node: Node, after: UUID | None, limit: int
    ) -> list[UUID]:
        """Members in id order after ``after``: a walk of the ids with the definition as a
        filter, which stops at ``limit``."""
        found = await self.matching(conn, scope, node, per_member=True)
        query = found.query
        if after is not None:
            query = query.where(found.id > after)
        async with planned_for_values(conn):
            rows = await conn.execute(query.order_by(found.id).limit(limit))
        return [r[0] for r in rows]

    async def matching_among(
        self, conn: AsyncConnection, scope: Scope, node: Node, member_ids: Sequence[UUID]
    ) -> set[UUID]:
        found = await self.matching(conn, scope, node, member_ids)
        async with planned_for_values(conn):
            return {r[0] for r in await conn.execute(found.query)}

    # segments

    async def insert(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(segments_t).values(**row))

    async def update(self, conn: AsyncConnection, segment_id: UUID, **values: Any) -> None:
        await conn.execute(update(segments_t).where(segments_t.c.id == segment_id).values(**values))

    async def get(self, conn: AsyncConnection, program_id: UUID, key: str) -> Any:
        query = select(segments_t).where(
            segments_t.c.program_id == program_id, segments_t.c.key == key
        )
        return (await conn.execute(query)).one_or_none()

    async def listing(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        archived: bool,
        after: str | None,
        limit: int,
    ) -> list[Any]:
        s = segments_t.c
        query = select(segments_t).where(s.program_id == program_id)
        if not archived:
            query = query.where(s.status == "active")
        if after is not None:
            query = query.where(s.key > after)
        return list(await conn.execute(query.order_by(s.key).limit(limit)))

    async def dynamic(self, conn: AsyncConnection, program_id: UUID) -> list[Any]:
        s = segments_t.c
        query = select(segments_t).where(
            s.program_id == program_id, s.status == "active", s.kind == "dynamic"
        )
        return list(await conn.execute(query.order_by(s.key)))

    async def has_dynamic(self, conn: AsyncConnection, program_id: UUID) -> bool:
        s = segments_t.c
        query = select(s.id).where(
            s.program_id == program_id, s.status == "active", s.kind == "dynamic"
        )
        return (await conn.scalar(query.limit(1))) is not None

    # membership

    async def members_among(
        self, conn: AsyncConnection, segment_id: UUID, member_ids: Sequence[UUID]
    ) -> set[UUID]:
        m = seg_members_t.c
        rows = await conn.execute(
            select(m.member_id).where(
                m.segment_id == segment_id, one_of(conn, m.member_id, member_ids)
            )
        )
        return {r[0] for r in rows}

    async def add_members(
        self,
        conn: AsyncConnection,
        segment_id: UUID,
        program_id: UUID,
        ids: Sequence[UUID],
        now: datetime,
    ) -> None:
        rows = [
            {"segment_id": segment_id, "member_id": i, "program_id": program_id, "entered_at": now}
            for i in ids
        ]
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(seg_members_t), rows[start : start + 5000])

    async def remove_members(
        self, conn: AsyncConnection, segment_id: UUID, ids: Sequence[UUID]
    ) -> None:
        m = seg_members_t.c
        ordered = list(ids)
        for start in range(0, len(ordered), 5000):
            chunk = ordered[start : start + 5000]
            await conn.execute(
                delete(seg_members_t).where(
                    m.segment_id == segment_id, one_of(conn, m.member_id, chunk)
                )
            )

    async def changes(
        self, conn: AsyncConnection, scope: Scope, node: Node, segment_id: UUID
    ) -> tuple[list[UUID], list[UUID]]:
        """Who the definition holds for and is not in the segment (entering), and who is in
        it and the definition no longer holds for (leaving): on PostgreSQL one full join of
        the two sets, each read once."""
        found = (await self.matching(conn, scope, node)).query
        m = seg_members_t.c
        now_in = select(m.member_id).where(m.segment_id == segment_id)
        if conn.dialect.name != "postgresql":
            # SQLite joins two subqueries by scanning one for each row of the other; its
            # EXCEPT sorts each once.
            entering = [r[0] for r in await conn.execute(found.except_(now_in))]
            leaving = [r[0] for r in await conn.execute(now_in.except_(found))]
            return sorted(entering), sorted(leaving)
        matching = found.subquery("matching")
        current = now_in.subquery("current")
        query = (
            select(matching.c.id, current.c.member_id)
            .select_from(matching.join(current, matching.c.id == current.c.member_id, full=True))
            .where(or_(matching.c.id.is_(None), current.c.member_id.is_(None)))
        )
        entering, leaving = [], []
        async with planned_for_values(conn):
            rows = (await conn.execute(query)).all()
        for new, old in rows:
            if new is not None:
                entering.append(new)
            else:
                leaving.append(old)
        return sorted(entering), sorted(leaving)

    async def all_members(self, conn: AsyncConnection, segment_id: UUID) -> list[UUID]:
        m = seg_members_t.c
        rows = await conn.execute(
            select(m.member_id).where(m.segment_id == segment_id).order_by(m.member_id)
        )
        return [r[0] for r in rows]

    async def member_count(self, conn: AsyncConnection, segment_id: UUID) -> int:
        m = seg_members_t.c
        found = await conn.scalar(
            select(func.count()).select_from(seg_members_t).where(m.segment_id == segment_id)
        )
        return int(found or 0)

    async def members_page(
        self, conn: AsyncConnection, segment_id: UUID, after: UUID | None, limit: int
    ) -> list[tuple[UUID, str | None]]:
        m = seg_members_t.c
        query = (
            select(m.member_id, members_t.c.name)
            .select_from(seg_members_t.join(members_t, members_t.c.id == m.member_id))
            .where(m.segment_id == segment_id)
        )
        if after is not None:
            query = query.where(m.member_id > after)
        rows = await conn.execute(query.order_by(m.member_id).limit(limit))
        return [(r[0], r[1]) for r in rows]

    async def names(self, conn: AsyncConnection, ids: Sequence[UUID]) -> dict[UUID, str | None]:
        if not ids:
            return {}
        rows = await conn.execute(
            select(members_t.c.id, members_t.c.name).where(one_of(conn, members_t.c.id, ids))
        )
        return {r[0]: r[1] for r in rows}

    async def segments_of(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> list[tuple[UUID, Any]]:
        """(member id, segment row) of the active segments these members are in."""
        m, s = seg_members_t.c, segments_t.c
        query = (
            select(m.member_id, segments_t)
            .select_from(seg_members_t.join(segments_t, s.id == m.segment_id))
            .where(
                s.program_id == program_id,
                s.status == "active",
                one_of(conn, m.member_id, member_ids),
            )
            .order_by(m.member_id, s.key)
        )
        return [(r[0], r) for r in await conn.execute(query)]

    async def keys_of(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> dict[UUID, set[str]]:
        m, s = seg_members_t.c, segments_t.c
        query = (
            select(m.member_id, s.key)
            .select_from(seg_members_t.join(segments_t, s.id == m.segment_id))
            .where(
                s.program_id == program_id,
                s.status == "active",
                one_of(conn, m.member_id, member_ids),
            )
        )
        found: dict[UUID, set[str]] = {}
        for member_id, key in await conn.execute(query):
            found.setdefault(member_id, set()).add(key)
        return found

    async def program_members(
        self, conn: AsyncConnection, program_id: UUID, ids: Sequence[UUID]
    ) -> set[UUID]:
        """Which of ``ids`` are members of the program."""
        found: set[UUID] = set()
        ordered = list(ids)
        for start in range(0, len(ordered), 5000):
            chunk = ordered[start : start + 5000]
            rows = await conn.execute(
                select(members_t.c.id).where(
                    members_t.c.program_id == program_id, one_of(conn, members_t.c.id, chunk)
                )
            )
            found.update(r[0] for r in rows)
        return found


segment_repository = SegmentRepository()
