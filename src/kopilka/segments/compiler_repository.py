"""The SQL of the built-in segment predicates: each a boolean expression about the row's
member, registered with :func:`kopilka.crm.predicates.compiles`, and the compiler of a
definition's tree (``compile_node``). ``repository.py`` builds the queries around them."""

import typing
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    and_,
    case,
    cast,
    column,
    exists,
    extract,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

from kopilka.crm.domain import stored_window
from kopilka.crm.predicates import COMPILERS, SqlContext, compiles
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
