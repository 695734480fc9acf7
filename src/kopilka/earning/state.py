"""The rules' member state for one transaction, and the effects that are not points.

``RulesState`` holds, for the members of a batch, the facts the program's rules read
(``CompiledProgram.needs``): history counters, profile, usage of limited rules, live
boosts, experiment arms. ``apply`` records one evaluation's effects other than points —
benefits and personal codes, used boosts, tags, custom events, usage of limited rules —
and moves the facts in memory, so the next event of the same batch sees them. With a unit
of work (a purchase, an activity) what it records is written with the transaction; without
one (a quote, a simulation) it stays in memory.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from kopilka.benefits.domain import Waiting
from kopilka.coupons.service import CouponService, coupon_service
from kopilka.earning.repository import EarningRepository, earning_repository
from kopilka.kit.ids import new_id
from kopilka.members.service import MemberService, member_service
from kopilka.models.rule_usage import PROGRAM_WIDE
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork
from kopilka.rules.context import UTC_ZONE, Boost, MemberFacts
from kopilka.rules.domain import (
    BenefitEffect,
    BoostUsed,
    CompiledProgram,
    EarnEffect,
    Evaluation,
    EventEffect,
    TagEffect,
    period_key,
)

UsageKey = tuple[str, str, str]  # rule id, subject, period


@dataclass(frozen=True)
class Granted:
    """A benefit a rule gave the member."""

    id: UUID | None  # None in a quote: nothing is granted yet
    rule_id: str
    kind: str
    payload: dict[str, Any]
    expires_at: datetime | None

    def answer(self) -> dict[str, Any]:
        return {
            "id": str(self.id) if self.id else None,
            "rule_id": self.rule_id,
            "kind": self.kind,
            "payload": self.payload,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass(frozen=True)
class Source:
    """What caused the effects: ``("purchase", id)``, ``("signup", external id)`` …"""

    type: str
    id: str


@dataclass
class RulesState:
    """Facts and effects of the rules for one batch of events of one program."""

    program_id: UUID
    version: int | None
    now: datetime
    zone: tzinfo = UTC_ZONE
    uow: UnitOfWork | None = None
    facts: dict[UUID, MemberFacts] = field(default_factory=dict)
    program_usage: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    usage_known: set[UsageKey] = field(default_factory=set)
    # Coupon campaigns the rules issue codes of (by key).
    coupon_campaigns: dict[str, Any] = field(default_factory=dict)
    # Benefits waiting for each member's next purchase (the till uses and marks them).
    waiting: dict[UUID, list[Waiting]] = field(default_factory=dict)
    repository: EarningRepository = earning_repository
    members: MemberService = member_service
    coupons: CouponService = coupon_service
    _usage: dict[UsageKey, list[int]] = field(default_factory=dict)
    _benefits: dict[UUID, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.uow is not None:
            self.uow.on_flush(f"rule-usage:{id(self)}", self._stage_usage)

    def member(self, member_id: UUID) -> MemberFacts:
        facts = self.facts.get(member_id)
        if facts is None:
            # Not ``setdefault``: it would build (and drop) new facts on every call.
            facts = self.facts[member_id] = MemberFacts()
        return facts

    # --- after each evaluation -----------------------------------------------------------

    def apply(
        self,
        compiled: CompiledProgram,
        member_id: UUID,
        evaluation: Evaluation,
        occurred_at: datetime,
        source: Source,
        amount: int | None,
    ) -> list[Granted]:
        """Record the evaluation's effects other than points; returns the benefits granted.

        ``amount`` is the purchase's amount (None for other events): it moves the member's
        history counters for the next purchase of the batch.
        """
        facts = self.member(member_id)
        granted: list[Granted] = []
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
        source: Source,
    ) -> Granted:
        expires = occurred_at + timedelta(days=effect.valid_days) if effect.valid_days else None
        payload = dict(effect.payload)
        if effect.kind == "coupon":
            payload, expires = self._issue_code(member_id, effect, occurred_at, source)
        benefit_id = new_id()
        instant = effect.kind in ("free_delivery", "free_sample")  # used on this purchase
        row = {
            "id": benefit_id,
            "program_id": self.program_id,
            "member_id": member_id,
            "rule_id": effect.rule_id,
            "program_version": self.version,
            "kind": effect.kind,
            "payload": payload,
            "status": "used" if instant else "active",
            "source_type": source.type,
            "source_id": source.id,
            "issued_at": occurred_at,
            "expires_at": expires,
            "used_at": occurred_at if instant else None,
            "used_by": source.id if instant else None,
        }
        self._benefits[benefit_id] = row
        if self.uow is not None:
            self.repository.stage_benefit(self.uow, row)
        if effect.kind == "boost":
            percent = int(effect.payload["factor_percent"])
            boost = Boost(str(benefit_id), effect.rule_id, percent, expires, occurred_at)
            facts.boosts.append(boost)
        return Granted(benefit_id, effect.rule_id, effect.kind, payload, expires)

    def _issue_code(
        self,
        member_id: UUID,
        effect: BenefitEffect,
        occurred_at: datetime,
        source: Source,
    ) -> tuple[dict[str, Any], datetime | None]:
        """A personal code of the effect's campaign; without an active campaign of that key
        (or without a unit of work: a quote issues nothing) the benefit is kept with no
        code (``code`` null) so the gap shows."""
        key = str(effect.payload["campaign"])
        campaign = self.coupon_campaigns.get(key)
        if campaign is None or campaign.status != "active" or self.uow is None:
            return {"campaign": key, "code": None}, None
        issued = self.coupons.stage_personal_code(
            self.uow,
            campaign,
            self.program_id,
            member_id,
            occurred_at,
            (source.type, source.id),
            effect.valid_days,
        )
        return {"campaign": key, "code": issued.code}, issued.expires_at

    def _use_boost(
        self, facts: MemberFacts, used: BoostUsed, occurred_at: datetime, source: Source
    ) -> None:
        facts.boosts = [b for b in facts.boosts if b.id != used.boost_id]
        boost_id = UUID(used.boost_id)
        change = {"status": "used", "used_at": occurred_at, "used_by": source.id}
        if boost_id in self._benefits:  # granted earlier in this batch: its row still changes
            self._benefits[boost_id].update(change)
        elif self.uow is not None:
            self.repository.stage_benefit_used(self.uow, {"id": boost_id, **change})

    def _tag(self, facts: MemberFacts, member_id: UUID, tag: str) -> None:
        if tag in facts.tags:
            return
        facts.tags = facts.tags | {tag}
        if self.uow is not None:
            self.members.stage_tags(self.uow, member_id, sorted(facts.tags))

    def _emit(self, member_id: UUID, effect: EventEffect, occurred_at: datetime) -> None:
        if self.uow is None:
            return
        self.uow.emit(
            events.RuleEvent(
                program_id=self.program_id,
                member_id=member_id,
                occurred_at=occurred_at,
                name=effect.name,
                rule_id=effect.rule_id,
                data=dict(effect.payload),
            )
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

    def _stage_usage(self, uow: UnitOfWork) -> None:
        """The usage counters as they stand at the end: one row per rule, subject, period."""
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
            (updates if key in self.usage_known else inserts).append(row)
        self.repository.stage_usage(uow, inserts, updates)
        self.usage_known |= set(self._usage)
        self._usage = {}
        # Benefit rows are written now: a later change of one is an update.
        self._benefits = {}
