"""Replay a draft program on stored history, next to the published one, writing nothing.

Purchases since a date are read back in time order, in chunks, as they were made (returns
are not subtracted: live earning saw the whole basket too), with their lines and context.
Each is evaluated by both programs with the member's facts as they stood at that purchase:
history counters start from what was stored before the window and move with every
replayed purchase. Each program keeps its own in-memory rule state — boosts, tags, usage
of limited rules — as the purchase path would have written it.

What a replay cannot know is said in docs/rules.md: profile facts (tags, attributes,
birthday) are today's; limit counters and boosts start empty at the window's start.
"""

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.kit.sql import one_of
from kopilka.models import Member, Purchase, PurchaseLine
from kopilka.models.base import table
from kopilka.programs.domain import parse_document
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import program_service
from kopilka.rules.domain import (
    UTC_ZONE,
    BasketLine,
    CompiledProgram,
    EarnEffect,
    EvaluationContext,
    MemberFacts,
    evaluate,
)
from kopilka.rules.registry import compile_program
from kopilka.rules.service import RulesState, assign_arm, zone_named
from kopilka.tiers.service import TierTracker

purchases_t = table(Purchase)
lines_t = table(PurchaseLine)
members_t = table(Member)
CHUNK = 5_000


@dataclass
class _Variant:
    """One program under replay: compiled rules, settings, and its own rule state."""

    settings: ProgramSettings
    compiled: CompiledProgram
    state: RulesState
    by_rule: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    fired: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    members: dict[str, set[UUID]] = field(default_factory=lambda: defaultdict(set))
    by_member: dict[UUID, int] = field(default_factory=lambda: defaultdict(int))
    tiers: TierTracker | None = None  # tiers in memory, from the replay's start


@dataclass(frozen=True)
class StoredPurchase:
    id: UUID
    member_id: UUID
    occurred_at: datetime
    total: int
    store: str | None
    channel: str
    context: dict[str, Any] | None
    lines: list[BasketLine]
    # What coupons and points took off each line (None: paid in money only).
    reductions: list[int] | None = None


def _variant(program_id: UUID, settings: ProgramSettings, now: datetime) -> _Variant:
    zone = zone_named(settings.timezone) or UTC_ZONE
    tiers = (
        TierTracker(settings.tiers, zone, program_id, None, now, {}, {}, {})
        if settings.tiers is not None
        else None
    )
    state = RulesState(program_id, None, now, zone)
    return _Variant(settings, compile_program(settings), state, tiers=tiers)


def _tier_lead(settings: ProgramSettings) -> timedelta:
    """How much history before the window the replay needs for tiers to stand where they
    stood: the ladder's window (all of it for lifetime windows)."""
    ladder = settings.tiers
    if ladder is None:
        return timedelta(0)
    if ladder.window.kind == "lifetime":
        return timedelta(days=365 * 100)
    if ladder.window.kind == "calendar_year":
        return timedelta(days=366)
    return timedelta(days=31 * ladder.window.months)


async def _history_before(
    conn: AsyncConnection, program_id: UUID, since: datetime
) -> AsyncIterator[tuple[UUID, int, int, datetime]]:
    net = purchases_t.c.total - purchases_t.c.returned_amount
    query = (
        select(
            purchases_t.c.member_id,
            func.count(),
            func.coalesce(func.sum(net), 0),
            func.max(purchases_t.c.occurred_at),
        )
        .where(purchases_t.c.program_id == program_id, purchases_t.c.occurred_at < since)
        .group_by(purchases_t.c.member_id)
    )
    for member_id, count, spend, last in (await conn.execute(query)).all():
        yield member_id, int(count), int(spend), as_utc(last)


async def stored_purchases(
    conn: AsyncConnection, program_id: UUID, since: datetime, until: datetime
) -> AsyncIterator[StoredPurchase]:
    """Purchases of ``[since, until)`` in time order, with lines, a chunk at a time."""
    after: tuple[datetime, UUID] | None = None
    while True:
        query = (
            select(
                purchases_t.c.id,
                purchases_t.c.member_id,
                purchases_t.c.occurred_at,
                purchases_t.c.total,
                purchases_t.c.store,
                purchases_t.c.channel,
                purchases_t.c.context,
                purchases_t.c.payments,
            )
            .where(
                purchases_t.c.program_id == program_id,
                purchases_t.c.occurred_at >= since,
                purchases_t.c.occurred_at < until,
            )
            .order_by(purchases_t.c.occurred_at, purchases_t.c.id)
            .limit(CHUNK)
        )
        if after is not None:
            moment, last_id = after
            query = query.where(
                or_(
                    purchases_t.c.occurred_at > moment,
                    and_(purchases_t.c.occurred_at == moment, purchases_t.c.id > last_id),
                )
            )
        rows = (await conn.execute(query)).all()
        if not rows:
            return
        lines = await _lines_of(conn, [r[0] for r in rows])
        for row in rows:
            yield StoredPurchase(
                row[0],
                row[1],
                as_utc(row[2]),
                int(row[3]),
                row[4],
                row[5],
                row[6],
                lines.get(row[0], []),
                (row[7] or {}).get("reductions"),
            )
        after = (rows[-1][2], rows[-1][0])


async def _lines_of(conn: AsyncConnection, ids: list[UUID]) -> dict[UUID, list[BasketLine]]:
    query = (
        select(
            lines_t.c.purchase_id,
            lines_t.c.sku,
            lines_t.c.category,
            lines_t.c.quantity,
            lines_t.c.amount,
            lines_t.c.brand,
            lines_t.c.tags,
        )
        .where(one_of(conn, lines_t.c.purchase_id, ids))
        .order_by(lines_t.c.purchase_id, lines_t.c.line_no)
    )
    found: dict[UUID, list[BasketLine]] = defaultdict(list)
    for purchase_id, sku, category, quantity, amount, brand, tags in (
        await conn.execute(query)
    ).all():
        found[purchase_id].append(
            BasketLine(sku, category, quantity, amount, brand, frozenset(tags or ()))
        )
    return found


async def _profiles(
    conn: AsyncConnection, program_id: UUID
) -> dict[UUID, tuple[datetime, Any, list[str], dict[str, Any], str]]:
    query = select(
        members_t.c.id,
        members_t.c.created_at,
        members_t.c.birthday,
        members_t.c.tags,
        members_t.c.attributes,
        members_t.c.status,
    ).where(members_t.c.program_id == program_id)
    return {
        r[0]: (as_utc(r[1]), r[2], list(r[3] or []), dict(r[4] or {}), r[5])
        for r in (await conn.execute(query)).all()
    }


def _seed(variant: _Variant, member_id: UUID, profile: Any, history: Any) -> MemberFacts:
    facts = variant.state.member(member_id)
    joined, birthday, tags, attributes, _ = profile
    facts.joined_at, facts.birthday = joined, birthday
    facts.tags, facts.attributes = frozenset(tags), attributes
    if variant.tiers is not None:
        variant.tiers.joined[member_id] = joined
    if history is not None:
        facts.purchase_count, facts.lifetime_spend, facts.last_purchase_at = history
    for experiment in variant.settings.experiments:
        facts.arms[experiment.name] = assign_arm(experiment, member_id)
    return facts


def _context(
    purchase: StoredPurchase,
    status: str,
    facts: MemberFacts,
    state: RulesState,
    earn_on_paid: bool = True,
) -> Any:
    """What the rules saw live: with ``earn_on: paid``, the lines less what coupons and
    points took off them."""
    extra = purchase.context or {}
    total, lines = purchase.total, purchase.lines
    if earn_on_paid and purchase.reductions:
        cuts = purchase.reductions
        total -= sum(cuts)
        lines = [
            line._replace(amount=line.amount - cut) for line, cut in zip(lines, cuts, strict=False)
        ]
    return EvaluationContext(
        total=total,
        lines=lines,
        occurred_at=purchase.occurred_at,
        channel=purchase.channel,
        store=purchase.store,
        member_status=status,
        region=extra.get("region"),
        payment_method=extra.get("payment_method"),
        coupons=frozenset(extra.get("coupons") or ()),
        member=facts,
        timezone=zone_named(facts.attributes.get("timezone")) or state.zone,
        program_usage=state.program_usage,
    )


async def simulate(
    conn: AsyncConnection,
    program_id: UUID,
    published: ProgramSettings,
    draft: ProgramSettings,
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    """Replay ``[since, until)`` under both programs; a report of what would change."""
    variants = {
        "published": _variant(program_id, published, until),
        "draft": _variant(program_id, draft, until),
    }
    window = max(v.compiled.window_days for v in variants.values())
    lead = max(_tier_lead(v.settings) for v in variants.values())
    start = since - max(timedelta(days=window), lead)
    profiles = await _profiles(conn, program_id)
    history = {m: (c, s, last) async for m, c, s, last in _history_before(conn, program_id, start)}
    seeded: set[UUID] = set()
    replayed = 0
    async for purchase in stored_purchases(conn, program_id, start, until):
        member_id = purchase.member_id
        profile = profiles.get(member_id)
        if profile is None:
            continue
        if member_id not in seeded:
            for variant in variants.values():
                _seed(variant, member_id, profile, history.get(member_id))
            seeded.add(member_id)
        counted = purchase.occurred_at >= since
        replayed += counted
        for variant in variants.values():
            _replay_one(variant, purchase, profile[4], counted)
    return _report(variants, replayed, since, until, draft)


def _replay_one(variant: _Variant, purchase: StoredPurchase, status: str, counted: bool) -> None:
    facts = variant.state.member(purchase.member_id)
    tiers = variant.tiers
    if not counted:  # before the window: only moves the history counters (and tiers)
        facts.record_purchase(purchase.occurred_at, purchase.total)
        if tiers is not None:
            tiers.after_purchase(
                purchase.member_id, str(purchase.id), purchase.occurred_at, purchase.total, 0
            )
        return
    if tiers is not None:
        tiers.prime(facts, purchase.member_id, purchase.occurred_at)
    context = _context(purchase, status, facts, variant.state, variant.settings.earn_on == "paid")
    evaluation = evaluate(variant.compiled, context)
    if tiers is not None:
        points = sum(
            e.amount for e in evaluation.earned if e.currency == tiers.ladder.points_currency
        )
        tiers.after_purchase(
            purchase.member_id, str(purchase.id), purchase.occurred_at, purchase.total, points
        )
    for effect in evaluation.effects:
        rule_id = getattr(effect, "rule_id", "")
        variant.fired[rule_id] += 1
        variant.members[rule_id].add(purchase.member_id)
        if isinstance(effect, EarnEffect):
            variant.by_rule[(rule_id, effect.currency)] += effect.amount
            if effect.currency == "points":
                variant.by_member[purchase.member_id] += effect.amount
    source = ("purchase", str(purchase.id))
    variant.state.apply(
        variant.compiled,
        purchase.member_id,
        evaluation,
        purchase.occurred_at,
        source,
        purchase.total,
    )


def _report(
    variants: dict[str, _Variant],
    replayed: int,
    since: datetime,
    until: datetime,
    draft: ProgramSettings,
) -> dict[str, Any]:
    published, proposed = variants["published"], variants["draft"]
    keys = sorted(set(published.by_rule) | set(proposed.by_rule))
    rule_ids = sorted({k[0] for k in keys} | set(published.fired) | set(proposed.fired))
    rules = []
    for rule_id in rule_ids:
        currencies = sorted({c for r, c in keys if r == rule_id})
        rules.append(
            {
                "rule_id": rule_id,
                "published": {c: published.by_rule.get((rule_id, c), 0) for c in currencies},
                "draft": {c: proposed.by_rule.get((rule_id, c), 0) for c in currencies},
                "fired_published": published.fired.get(rule_id, 0),
                "fired_draft": proposed.fired.get(rule_id, 0),
                "members_published": len(published.members.get(rule_id, ())),
                "members_draft": len(proposed.members.get(rule_id, ())),
            }
        )
    totals: dict[str, dict[str, int]] = {}
    for (_, currency), amount in published.by_rule.items():
        totals.setdefault(currency, {"published": 0, "draft": 0})["published"] += amount
    for (_, currency), amount in proposed.by_rule.items():
        totals.setdefault(currency, {"published": 0, "draft": 0})["draft"] += amount
    members = set(published.by_member) | set(proposed.by_member)
    affected = sum(
        1 for m in members if published.by_member.get(m, 0) != proposed.by_member.get(m, 0)
    )
    kinds = {c.code: c.kind for c in draft.currencies}
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "purchases": replayed,
        "rules": rules,
        "totals": [
            {
                "currency": currency,
                "kind": kinds.get(currency, "points"),
                "published": t["published"],
                "draft": t["draft"],
                # What the program would owe its members in addition (negative: less).
                "liability_change": t["draft"] - t["published"],
            }
            for currency, t in sorted(totals.items())
        ],
        "members_affected": affected,
        "tiers": {name: _tier_counts(v) for name, v in variants.items() if v.tiers},
    }


def _tier_counts(variant: _Variant) -> dict[str, int]:
    """Members on each tier above the entry one at the end of the replay."""
    assert variant.tiers is not None
    entry = variant.tiers.ladder.levels[0].id
    counts: dict[str, int] = defaultdict(int)
    for state in variant.tiers.states.values():
        if state.tier != entry:
            counts[state.tier] += 1
    return dict(counts)


async def simulate_draft(
    conn: AsyncConnection,
    program: Any,
    document: Mapping[str, Any] | None,
    since: datetime | None,
    days: int,
    now: datetime,
) -> dict[str, Any]:
    """Replay ``[since or now − days, now)`` under ``document`` (default: the stored draft,
    or the version in force when there is none) next to the version in force."""
    if document is None:
        document = (await program_service.draft(conn, program.id)).document
    draft = parse_document(document)
    started = time.perf_counter()
    report = await simulate(
        conn, program.id, program.settings, draft, since or now - timedelta(days=days), now
    )
    report["version_in_force"] = program.version
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report
