"""Replay a draft program on stored history, next to the published one, writing nothing.

Purchases since a date are read back in time order, in chunks, as they were made (returns
are not subtracted: live earning saw the whole basket too), with their lines and context.
Each is run through the same rules pipeline as a live purchase (``RulesPipeline.replay``)
by both programs, with the member's facts as they stood at that purchase: history counters
start from what was stored before the window and move with every replayed purchase. Each
program keeps its own in-memory rule state — boosts, tags, usage of limited rules, tiers —
as the purchase path would have written it.

What a replay cannot know is said in docs/rules.md: profile facts (tags, attributes,
birthday) are today's; limit counters and boosts start empty at the window's start.
"""

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.earning.service import RulesEvent, RulesPipeline, earning_service
from kopilka.earning.state import Source
from kopilka.members.service import MemberProfile, member_service
from kopilka.programs.domain import parse_document
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import ProgramContext, program_service
from kopilka.purchases.repository import StoredPurchase, purchase_repository
from kopilka.rules.domain import EarnEffect
from kopilka.rules.experiments import assign_arm
from kopilka.rules.registry import compile_program


@dataclass
class _Variant:
    """One program under replay: its settings, its pipeline (with its own rule state and
    tiers in memory) and what it gave."""

    settings: ProgramSettings
    pipeline: RulesPipeline
    by_rule: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    fired: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    members: dict[str, set[UUID]] = field(default_factory=lambda: defaultdict(set))
    by_member: dict[UUID, int] = field(default_factory=lambda: defaultdict(int))


def _variant(program: ProgramContext, settings: ProgramSettings, now: datetime) -> _Variant:
    replayed = ProgramContext(
        program.id, program.slug, program.name, program.version, settings, compile_program(settings)
    )
    return _Variant(settings, earning_service.in_memory(program.id, settings, replayed, now))


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


def _seed(
    variant: _Variant,
    member_id: UUID,
    profile: MemberProfile,
    history: tuple[int, int, datetime] | None,
) -> None:
    pipeline = variant.pipeline
    facts = pipeline.state.member(member_id)
    facts.joined_at, facts.birthday = profile.joined_at, profile.birthday
    facts.tags, facts.attributes = profile.tags, profile.attributes
    if pipeline.tiers is not None:
        pipeline.tiers.joined[member_id] = profile.joined_at
    if history is not None:
        facts.purchase_count, facts.lifetime_spend, facts.last_purchase_at = history
    for experiment in variant.settings.experiments:
        facts.arms[experiment.name] = assign_arm(experiment, member_id)


def replay_event(purchase: StoredPurchase, earn_on_paid: bool = True) -> RulesEvent:
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
    return RulesEvent(
        trigger="purchase",
        source=Source("purchase", str(purchase.id)),
        occurred_at=purchase.occurred_at,
        channel=purchase.channel,
        total=total,
        lines=lines,
        store=purchase.store,
        region=extra.get("region"),
        payment_method=extra.get("payment_method"),
        coupons=frozenset(extra.get("coupons") or ()),
        spend=purchase.total,
    )


async def simulate(
    conn: AsyncConnection,
    program: ProgramContext,
    draft: ProgramSettings,
    since: datetime,
    until: datetime,
    *,
    published: ProgramSettings | None = None,
) -> dict[str, Any]:
    """Replay ``[since, until)`` under the program in force (or ``published``) and
    ``draft``; a report of what would change."""
    variants = {
        "published": _variant(program, published or program.settings, until),
        "draft": _variant(program, draft, until),
    }
    window = max(v.pipeline.program.compiled.window_days for v in variants.values())
    lead = max(_tier_lead(v.settings) for v in variants.values())
    start = since - max(timedelta(days=window), lead)
    profiles = await member_service.profiles(conn, program)
    history = await purchase_repository.history_before(conn, program.id, start)
    seeded: set[UUID] = set()
    replayed = 0
    async for purchase in purchase_repository.stored_purchases(conn, program.id, start, until):
        member_id = purchase.member_id
        profile = profiles.get(member_id) if member_id is not None else None
        if member_id is None or profile is None:
            continue
        if member_id not in seeded:
            for variant in variants.values():
                _seed(variant, member_id, profile, history.get(member_id))
            seeded.add(member_id)
        counted = purchase.occurred_at >= since
        replayed += counted
        for variant in variants.values():
            _replay_one(variant, purchase, member_id, profile.status, counted)
    return _report(variants, replayed, since, until, draft)


def _replay_one(
    variant: _Variant, purchase: StoredPurchase, member_id: UUID, status: str, counted: bool
) -> None:
    event = replay_event(purchase, variant.settings.earn_on == "paid")
    if not counted:  # before the window: only moves the history counters (and tiers)
        variant.pipeline.observe(event, member_id)
        return
    evaluation = variant.pipeline.replay(event, member_id, status)
    points = variant.settings.points_currency()
    for effect in evaluation.effects:
        rule_id = getattr(effect, "rule_id", "")
        variant.fired[rule_id] += 1
        variant.members[rule_id].add(member_id)
        if isinstance(effect, EarnEffect):
            variant.by_rule[(rule_id, effect.currency)] += effect.amount
            if effect.currency == points:
                variant.by_member[member_id] += effect.amount


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
        "tiers": {name: _tier_counts(v) for name, v in variants.items() if v.pipeline.tiers},
    }


def _tier_counts(variant: _Variant) -> dict[str, int]:
    """Members on each tier above the entry one at the end of the replay."""
    tiers = variant.pipeline.tiers
    assert tiers is not None
    entry = tiers.ladder.levels[0].id
    counts: dict[str, int] = defaultdict(int)
    for state in tiers.states.values():
        if state.tier != entry:
            counts[state.tier] += 1
    return dict(counts)


async def simulate_draft(
    conn: AsyncConnection,
    program: ProgramContext,
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
    report = await simulate(conn, program, draft, since or now - timedelta(days=days), now)
    report["version_in_force"] = program.version
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report
