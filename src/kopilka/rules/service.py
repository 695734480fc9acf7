"""Member state for the rules, and the effects that are not points.

``RulesState.load`` reads, for the members of a batch, only the facts the program's rules
use (``CompiledProgram.needs``): history counters, profile, usage of limited rules, live
boosts, experiment arms. Program-wide usage rows (budgets, program limits) are locked, so
two purchases cannot both spend the last of a budget. ``RulesState.apply`` records one
evaluation's non-point effects and updates the facts in memory, so the next purchase of
the same batch sees them; ``stage`` adds every row to the batch's single write.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.domain import personal_code_row
from kopilka.coupons.repository import coupon_repository
from kopilka.kit.bulk import WriteBatch
from kopilka.kit.clock import as_utc
from kopilka.kit.ids import new_id
from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import (
    CouponCode,
    ExperimentAssignment,
    Member,
    MemberBenefit,
    OutboxEvent,
    Program,
    Purchase,
    RuleUsage,
)
from kopilka.models.base import table
from kopilka.models.rule_usage import PROGRAM_WIDE
from kopilka.rules.domain import (
    UTC_ZONE,
    BenefitEffect,
    Boost,
    BoostUsed,
    CompiledProgram,
    EarnEffect,
    Evaluation,
    EventEffect,
    MemberFacts,
    TagEffect,
    period_key,
)
from kopilka.rules.schemas import Experiment

members_t = table(Member)
programs_t = table(Program)
purchases_t = table(Purchase)
usage_t = table(RuleUsage)
benefits_t = table(MemberBenefit)
assignments_t = table(ExperimentAssignment)
outbox_t = table(OutboxEvent)
coupon_codes_t = table(CouponCode)

UsageKey = tuple[str, str, str]  # rule id, subject, period


@lru_cache(maxsize=512)
def zone_named(name: object) -> tzinfo | None:
    """The time zone called ``name``, or None for no name or an unknown one."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def assign_arm(experiment: Experiment, member_id: UUID) -> str:
    """The member's arm: a stable hash of experiment and member into 0–99, then arms by
    their cumulative percents. The same member always lands in the same arm."""
    digest = hashlib.sha256(f"{experiment.name}:{member_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    cumulative = 0
    for arm in experiment.arms:
        cumulative += arm.percent
        if bucket < cumulative:
            return arm.name
    return experiment.arms[-1].name


def coupon_campaign_keys(settings: Any) -> list[str]:
    """The coupon campaigns the program's rules issue codes of."""
    return sorted(
        {
            effect.campaign
            for rule in settings.rules
            for effect in rule.effects
            if getattr(effect, "type", None) == "coupon"
        }
    )


@dataclass
class RulesState:
    """Facts and pending writes of the rules for one batch of events of one program."""

    program_id: UUID
    version: int | None
    now: datetime
    zone: tzinfo = UTC_ZONE
    facts: dict[UUID, MemberFacts] = field(default_factory=dict)
    program_usage: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    _usage_known: set[UsageKey] = field(default_factory=set)
    _usage: dict[UsageKey, list[int]] = field(default_factory=dict)
    _benefits: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    _used: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    _tags: dict[UUID, list[str]] = field(default_factory=dict)
    _assignments: list[dict[str, Any]] = field(default_factory=list)
    _outbox: list[dict[str, Any]] = field(default_factory=list)
    # Coupon campaigns the rules issue codes of (by key), and the codes issued.
    coupon_campaigns: dict[str, Any] = field(default_factory=dict)
    _codes: list[dict[str, Any]] = field(default_factory=list)

    def member(self, member_id: UUID) -> MemberFacts:
        return self.facts.setdefault(member_id, MemberFacts())

    # --- after each evaluation -----------------------------------------------------------

    def apply(
        self,
        compiled: CompiledProgram,
        member_id: UUID,
        evaluation: Evaluation,
        occurred_at: datetime,
        source: tuple[str, str],
        amount: int | None,
    ) -> list[dict[str, Any]]:
        """Record the evaluation's effects other than points; returns the benefits granted.

        ``amount`` is the purchase's amount (None for other events): it moves the member's
        history counters for the next purchase of the batch.
        """
        facts = self.member(member_id)
        granted: list[dict[str, Any]] = []
        for effect in evaluation.effects:
            if isinstance(effect, BenefitEffect):
                granted.append(self._grant(facts, member_id, effect, occurred_at, source))
            elif isinstance(effect, BoostUsed):
                self._use_boost(facts, effect, occurred_at, source)
            elif isinstance(effect, TagEffect):
                self._tag(facts, member_id, effect.tag)
            elif isinstance(effect, EventEffect):
                self._emit(member_id, effect, occurred_at)
        self._count_usage(compiled, facts, member_id, evaluation, occurred_at)
        if amount is not None:
            facts.record_purchase(occurred_at, amount)
        return granted

    def _grant(
        self,
        facts: MemberFacts,
        member_id: UUID,
        effect: BenefitEffect,
        occurred_at: datetime,
        source: tuple[str, str],
    ) -> dict[str, Any]:
        expires = occurred_at + timedelta(days=effect.valid_days) if effect.valid_days else None
        payload = dict(effect.payload)
        if effect.kind == "coupon":
            payload, expires = self._issue_code(member_id, effect, occurred_at, source)
        benefit_id = new_id()
        instant = effect.kind in ("free_delivery", "free_sample")  # used on this purchase
        self._benefits[benefit_id] = {
            "id": benefit_id,
            "program_id": self.program_id,
            "member_id": member_id,
            "rule_id": effect.rule_id,
            "program_version": self.version,
            "kind": effect.kind,
            "payload": payload,
            "status": "used" if instant else "active",
            "source_type": source[0],
            "source_id": source[1],
            "issued_at": occurred_at,
            "expires_at": expires,
            "used_at": occurred_at if instant else None,
            "used_by": source[1] if instant else None,
        }
        if effect.kind == "boost":
            percent = int(effect.payload["factor_percent"])
            facts.boosts.append(Boost(str(benefit_id), effect.rule_id, percent, expires))
        return {
            "id": str(benefit_id),
            "rule_id": effect.rule_id,
            "kind": effect.kind,
            "payload": payload,
            "expires_at": expires.isoformat() if expires else None,
        }

    def _issue_code(
        self,
        member_id: UUID,
        effect: BenefitEffect,
        occurred_at: datetime,
        source: tuple[str, str],
    ) -> tuple[dict[str, Any], datetime | None]:
        """A personal code of the effect's campaign; without an active campaign of that key
        the benefit is kept with no code (``code`` null) so the gap shows."""
        key = str(effect.payload["campaign"])
        campaign = self.coupon_campaigns.get(key)
        if campaign is None or campaign.status != "active":
            return {"campaign": key, "code": None}, None
        row = personal_code_row(
            campaign, self.program_id, member_id, occurred_at, source, effect.valid_days
        )
        self._codes.append(row)
        return {"campaign": key, "code": row["code"]}, row["valid_until"]

    def _use_boost(
        self, facts: MemberFacts, used: BoostUsed, occurred_at: datetime, source: tuple[str, str]
    ) -> None:
        facts.boosts = [b for b in facts.boosts if b.id != used.boost_id]
        boost_id = UUID(used.boost_id)
        change = {"status": "used", "used_at": occurred_at, "used_by": source[1]}
        if boost_id in self._benefits:  # granted earlier in this batch: not stored yet
            self._benefits[boost_id].update(change)
        else:
            self._used[boost_id] = {"id": boost_id, **change}

    def _tag(self, facts: MemberFacts, member_id: UUID, tag: str) -> None:
        if tag in facts.tags:
            return
        facts.tags = facts.tags | {tag}
        self._tags[member_id] = sorted(facts.tags)

    def _emit(self, member_id: UUID, effect: EventEffect, occurred_at: datetime) -> None:
        self._outbox.append(
            {
                "program_id": self.program_id,
                "member_id": member_id,
                "event_id": new_id(),
                "topic": f"rule.{effect.name}",
                "payload": {"rule_id": effect.rule_id, **effect.payload},
                "occurred_at": occurred_at,
                "created_at": self.now,
            }
        )

    def _count_usage(
        self,
        compiled: CompiledProgram,
        facts: MemberFacts,
        member_id: UUID,
        evaluation: Evaluation,
        occurred_at: datetime,
    ) -> None:
        limited = {r.id: r for r in compiled.rules if r.limits}
        if not limited:
            return
        fired: dict[str, int] = {}
        for effect in evaluation.effects:
            rule_id = getattr(effect, "rule_id", "")
            if rule_id in limited:
                amount = effect.amount if isinstance(effect, EarnEffect) else 0
                fired[rule_id] = fired.get(rule_id, 0) + amount
        local = occurred_at.astimezone(self.zone)
        for rule_id, amount in fired.items():
            for limit in limited[rule_id].limits:
                period = period_key(limit.period, local)
                member_scope = limit.scope == "member"
                counters = facts.usage if member_scope else self.program_usage
                times, used = counters.get((rule_id, period), (0, 0))
                counters[(rule_id, period)] = (times + 1, used + amount)
                subject = member_id.hex if member_scope else PROGRAM_WIDE
                pending = self._usage.setdefault((rule_id, subject, period), [0, 0])
                pending[0] += 1
                pending[1] += amount

    # --- the batch's single write --------------------------------------------------------

    def stage(self, batch: WriteBatch) -> None:
        batch.insert(coupon_codes_t, self._codes)
        batch.insert(benefits_t, list(self._benefits.values()))
        batch.update(benefits_t, ("id",), list(self._used.values()))
        batch.update(
            members_t, ("id",), [{"id": m, "tags": tags} for m, tags in self._tags.items()]
        )
        batch.insert(assignments_t, self._assignments)
        batch.insert(outbox_t, self._outbox)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for key in self._usage:
            rule_id, subject, period = key
            counters = (
                self.member(UUID(hex=subject)).usage
                if subject != PROGRAM_WIDE
                else self.program_usage
            )
            total_times, total_amount = counters[(rule_id, period)]
            row = {
                "program_id": self.program_id,
                "rule_id": rule_id,
                "subject": subject,
                "period": period,
                "times": total_times,
                "amount": total_amount,
            }
            (updates if key in self._usage_known else inserts).append(row)
        batch.insert(usage_t, inserts)
        batch.update(usage_t, ("program_id", "rule_id", "subject", "period"), updates)


class RulesStateLoader:
    async def load(
        self,
        conn: AsyncConnection,
        program: Any,
        member_ids: Sequence[UUID],
        earliest: datetime,
        now: datetime,
        *,
        lock: bool = True,
    ) -> RulesState:
        """Facts of ``member_ids`` for the program's rules, as of before this batch.
        ``lock`` (not for quotes) locks the program-wide counters the rules may move."""
        compiled = program.compiled
        zone = zone_named(program.settings.timezone) or UTC_ZONE
        state = RulesState(program.id, getattr(program, "version", None), now, zone)
        ids = sorted(set(member_ids))
        for member_id in ids:
            state.member(member_id)
        needs = compiled.needs
        if not ids:
            return state
        if campaigns := coupon_campaign_keys(program.settings):
            found = await coupon_repository.campaigns_by_keys(conn, program.id, campaigns)
            state.coupon_campaigns = {row.key: row for row in found}
        if "profile" in needs:
            await self._profile(conn, state, ids)
        if "history" in needs:
            await self._history(conn, state, ids, earliest - timedelta(days=compiled.window_days))
        if "usage" in needs:
            await self._usage(conn, state, program, ids, lock)
        if "boosts" in needs:
            await self._boosts(conn, state, ids)
        if "experiments" in needs:
            await self._experiments(conn, state, program, ids, now)
        return state

    async def _profile(self, conn: AsyncConnection, state: RulesState, ids: list[UUID]) -> None:
        query = select(
            members_t.c.id,
            members_t.c.created_at,
            members_t.c.birthday,
            members_t.c.tags,
            members_t.c.attributes,
        ).where(one_of(conn, members_t.c.id, ids))
        for row in (await conn.execute(query)).all():
            facts = state.member(row.id)
            facts.joined_at = as_utc(row.created_at)
            facts.birthday = row.birthday
            facts.tags = frozenset(row.tags or ())
            facts.attributes = dict(row.attributes or {})

    async def _history(
        self, conn: AsyncConnection, state: RulesState, ids: list[UUID], since: datetime
    ) -> None:
        net = purchases_t.c.total - purchases_t.c.returned_amount
        totals = (
            select(
                purchases_t.c.member_id,
                func.count(),
                func.coalesce(func.sum(net), 0),
                func.max(purchases_t.c.occurred_at),
            )
            .where(one_of(conn, purchases_t.c.member_id, ids))
            .group_by(purchases_t.c.member_id)
        )
        for member_id, count, spend, last in (await conn.execute(totals)).all():
            facts = state.member(member_id)
            facts.purchase_count, facts.lifetime_spend = count, int(spend)
            facts.last_purchase_at = as_utc(last) if last is not None else None
        recent = (
            select(purchases_t.c.member_id, purchases_t.c.occurred_at, net)
            .where(one_of(conn, purchases_t.c.member_id, ids), purchases_t.c.occurred_at > since)
            .order_by(purchases_t.c.occurred_at)
        )
        for member_id, occurred_at, amount in (await conn.execute(recent)).all():
            state.member(member_id).recent.append((as_utc(occurred_at), int(amount)))

    async def _usage(
        self, conn: AsyncConnection, state: RulesState, program: Any, ids: list[UUID], lock: bool
    ) -> None:
        rules = [r for r in program.compiled.rules if r.limits]
        member_rules = [r.id for r in rules if any(x.scope == "member" for x in r.limits)]
        program_rules = [r.id for r in rules if any(x.scope == "program" for x in r.limits)]
        if member_rules:
            query = select(usage_t).where(
                usage_t.c.program_id == program.id,
                one_of(conn, usage_t.c.rule_id, member_rules),
                one_of(conn, usage_t.c.subject, [m.hex for m in ids]),
            )
            for row in (await conn.execute(query)).all():
                state.member(UUID(hex=row.subject)).usage[(row.rule_id, row.period)] = (
                    row.times,
                    row.amount,
                )
                state._usage_known.add((row.rule_id, row.subject, row.period))
        if program_rules:
            query = select(usage_t).where(
                and_(
                    usage_t.c.program_id == program.id,
                    one_of(conn, usage_t.c.rule_id, program_rules),
                    usage_t.c.subject == PROGRAM_WIDE,
                )
            )
            if lock and is_postgres(conn):
                # Budgets are shared: purchases that may move a program-wide counter take
                # turns on the program's row (after their members' locks, always in that
                # order), so a counter row that does not exist yet is created by one of them
                # only, and nobody spends what another is spending.
                await conn.execute(
                    select(programs_t.c.id)
                    .where(programs_t.c.id == program.id)
                    .with_for_update(key_share=True)
                )
            for row in (await conn.execute(query)).all():
                state.program_usage[(row.rule_id, row.period)] = (row.times, row.amount)
                state._usage_known.add((row.rule_id, PROGRAM_WIDE, row.period))

    async def _boosts(self, conn: AsyncConnection, state: RulesState, ids: list[UUID]) -> None:
        query = select(
            benefits_t.c.id,
            benefits_t.c.member_id,
            benefits_t.c.rule_id,
            benefits_t.c.payload,
            benefits_t.c.expires_at,
        ).where(
            one_of(conn, benefits_t.c.member_id, ids),
            benefits_t.c.kind == "boost",
            benefits_t.c.status == "active",
        )
        for row in (await conn.execute(query)).all():
            expires = as_utc(row.expires_at) if row.expires_at is not None else None
            boost = Boost(str(row.id), row.rule_id, int(row.payload["factor_percent"]), expires)
            state.member(row.member_id).boosts.append(boost)

    async def _experiments(
        self,
        conn: AsyncConnection,
        state: RulesState,
        program: Any,
        ids: list[UUID],
        now: datetime,
    ) -> None:
        query = select(
            assignments_t.c.experiment, assignments_t.c.member_id, assignments_t.c.arm
        ).where(
            assignments_t.c.program_id == program.id, one_of(conn, assignments_t.c.member_id, ids)
        )
        recorded: dict[tuple[str, UUID], str] = {
            (e, m): arm for e, m, arm in (await conn.execute(query)).all()
        }
        for experiment in program.settings.experiments:
            arms = {arm.name for arm in experiment.arms}
            for member_id in ids:
                # Once recorded, a member stays in their arm even if the shares change later.
                kept = recorded.get((experiment.name, member_id))
                arm = (
                    kept if kept is not None and kept in arms else assign_arm(experiment, member_id)
                )
                state.member(member_id).arms[experiment.name] = arm
                if (experiment.name, member_id) not in recorded:
                    state._assignments.append(
                        {
                            "program_id": program.id,
                            "experiment": experiment.name,
                            "member_id": member_id,
                            "arm": arm,
                            "assigned_at": now,
                        }
                    )


rules_state_loader = RulesStateLoader()
