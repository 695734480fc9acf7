"""The one rules pipeline: purchases, returns, activities, quotes and simulations all run
their rules through :class:`RulesPipeline`.

For each event: the member's tier is given to the rules, the program's rules are
evaluated with the member's facts, the points are credited to the ledger, the other effects
(benefits and codes, boosts, tags, custom events, usage of limited rules) recorded, and a
purchase's spend counted towards the member's tier — all into the transaction's unit of
work. A quote evaluates only; a simulation keeps everything in memory. Never commits.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.benefits.service import BenefitService, benefit_service
from kopilka.coupons.service import CouponService, coupon_service
from kopilka.earning import prediction_facts, segment_keys
from kopilka.earning.repository import EarningRepository, earning_repository
from kopilka.earning.state import Granted, RulesState, Source
from kopilka.kit.clock import zone_named
from kopilka.ledger.domain import Balance, BalanceKey
from kopilka.ledger.service import Earned, LedgerService, ledger_service
from kopilka.ledger.unit import LedgerChanges, ledger_changes
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import ProgramContext
from kopilka.rules.context import UTC_ZONE, BasketLine, Boost, EvaluationContext
from kopilka.rules.domain import Evaluation, evaluate
from kopilka.rules.experiments import assign_arm
from kopilka.tiers.service import TierService, TierTracker, tier_service


# Not frozen: one is made for every event, and a frozen dataclass takes twice as long to make.
@dataclass(slots=True)
class RulesEvent:
    """What the rules run on: a purchase's basket, or another event (``total`` 0 but for a
    return's money)."""

    trigger: str  # purchase, signup, profile_completed, review, birthday, event, return
    source: Source  # what the ledger and benefits name as the cause
    occurred_at: datetime
    channel: str
    total: int = 0  # what the rules earn on (a purchase: after coupons and points)
    lines: Sequence[BasketLine] = ()
    store: str | None = None
    region: str | None = None
    payment_method: str | None = None
    coupons: frozenset[str] = frozenset()
    name: str | None = None  # a custom event's name
    # A purchase's whole basket: it moves the member's history counters and tier; None for
    # events that are not purchases.
    spend: int | None = None


@dataclass(frozen=True)
class Applied:
    """What the rules gave one event."""

    evaluation: Evaluation
    earned: list[Earned]
    benefits: list[Granted]
    tier: dict[str, Any] | None = None


class RulesPipeline:
    """The rules of one program over the events of one transaction (or one replay)."""

    def __init__(
        self,
        program: ProgramContext,
        state: RulesState,
        tiers: TierTracker | None,
        ledger: LedgerChanges | None,
        ledger_service_: LedgerService = ledger_service,
    ) -> None:
        self.program = program
        self.state = state
        self.tiers = tiers
        self.ledger = ledger
        self._ledger_service = ledger_service_

    def context(self, event: RulesEvent, member_id: UUID, status: str) -> EvaluationContext:
        """The rules' view of ``event``: the member's facts, their tier at that moment, local
        time in the member's own zone (attribute ``timezone``) or the program's."""
        facts = self.state.member(member_id)
        if self.tiers is not None:
            self.tiers.prime(facts, member_id, event.occurred_at)
        return EvaluationContext(
            total=event.total,
            lines=event.lines,
            occurred_at=event.occurred_at,
            channel=event.channel,
            store=event.store,
            member_status=status,
            trigger=event.trigger,
            event_name=event.name,
            region=event.region,
            payment_method=event.payment_method,
            coupons=event.coupons,
            member=facts,
            timezone=zone_named(facts.attributes.get("timezone")) or self.state.zone,
            program_usage=self.state.program_usage,
        )

    def evaluate(
        self, event: RulesEvent, member_id: UUID, status: str, *, explain: bool = False
    ) -> Evaluation:
        return evaluate(
            self.program.compiled, self.context(event, member_id, status), explain=explain
        )

    def apply_rules(
        self,
        event: RulesEvent,
        member_id: UUID,
        status: str,
        balances: dict[BalanceKey, Balance],
        *,
        explain: bool = False,
    ) -> Applied:
        """Evaluate ``event`` and record everything it gives (the member is locked and their
        ``balances`` read): points credited, other effects, the tier moved by a purchase."""
        evaluation = self.evaluate(event, member_id, status, explain=explain)
        earned: list[Earned] = []
        if self.ledger is not None:
            earned = self._ledger_service.credit_purchase(
                self.ledger,
                self.program,
                balances,
                member_id=member_id,
                purchase_id=event.source.id,
                effects=[(e.rule_id, e.currency, e.amount) for e in evaluation.earned],
                occurred_at=event.occurred_at,
                source_type=event.source.type,
            )
        benefits = self.state.apply(
            self.program.compiled,
            member_id,
            evaluation,
            event.occurred_at,
            event.source,
            event.spend,
        )
        return Applied(
            evaluation, earned, benefits, self._count_spend(event, member_id, evaluation)
        )

    def replay(self, event: RulesEvent, member_id: UUID, status: str) -> Evaluation:
        """A simulation's step: evaluate and move the in-memory state, credit nothing."""
        evaluation = self.evaluate(event, member_id, status)
        self._count_spend(event, member_id, evaluation)
        self.state.apply(
            self.program.compiled,
            member_id,
            evaluation,
            event.occurred_at,
            event.source,
            event.spend,
        )
        return evaluation

    def observe(self, event: RulesEvent, member_id: UUID) -> None:
        """A purchase before a replay's window: it only moves history counters and tiers."""
        if event.spend is None:
            return
        self.state.member(member_id).record_purchase(event.occurred_at, event.spend)
        if self.tiers is not None:
            self.tiers.after_purchase(member_id, event.source.id, event.occurred_at, event.spend, 0)

    def _count_spend(
        self, event: RulesEvent, member_id: UUID, evaluation: Evaluation
    ) -> dict[str, Any] | None:
        """A purchase counts towards the member's tier at once (the next purchase of the
        batch is judged at the new tier)."""
        if self.tiers is None or event.spend is None:
            return None
        currency = self.tiers.ladder.points_currency
        points = sum(e.amount for e in evaluation.earned if e.currency == currency)
        return self.tiers.after_purchase(
            member_id, event.source.id, event.occurred_at, event.spend, points
        )


# Benefits that wait for the member after the event that gave them.
OFFER_KINDS = ("boost", "reward", "coupon")


@dataclass(frozen=True)
class Offer:
    """A benefit waiting for the member: ``boost`` (``payload.factor_percent``: 200 is
    twice the points of their next purchase), ``reward`` (``payload.reward``: a reward of
    the shop they may take) or ``coupon`` (``payload.campaign`` and ``payload.code``)."""

    id: UUID
    kind: str
    rule_id: str
    title: str | None
    description: str | None
    payload: dict[str, Any]
    issued_at: datetime
    expires_at: datetime | None


class EarningService:
    def __init__(
        self,
        repository: EarningRepository = earning_repository,
        tiers: TierService = tier_service,
        coupons: CouponService = coupon_service,
        benefits: BenefitService = benefit_service,
    ) -> None:
        self.repository = repository
        self.tiers = tiers
        self.coupons = coupons
        self.benefits = benefits

    async def start(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Sequence[UUID],
        earliest: datetime,
        now: datetime,
        uow: UnitOfWork | None = None,
        *,
        single_event: bool = False,
        tier_read: Any = None,
    ) -> RulesPipeline:
        """The pipeline for events of ``member_ids`` dated from ``earliest`` on: their facts
        and tiers as of before them. With ``uow`` (the members locked) everything the rules
        give is written with it, and program-wide counters are locked; without it (a quote)
        nothing is written. ``tier_read``: the single event's tier window, already read
        (``TierService.window_for``)."""
        state = await self.load_state(conn, program, member_ids, earliest, now, uow)
        tiers = await self.tiers.track(
            conn,
            program,
            list(member_ids),
            earliest,
            now,
            single_event=single_event,
            read=tier_read,
        )
        if tiers is not None and uow is not None:
            tiers.attach(uow)
        ledger = ledger_changes(uow, program.id) if uow is not None else None
        return RulesPipeline(program, state, tiers, ledger)

    def in_memory(
        self, program_id: UUID, settings: ProgramSettings, program: ProgramContext, now: datetime
    ) -> RulesPipeline:
        """A pipeline over no stored state, for replays: facts are seeded by the caller."""
        zone = zone_named(settings.timezone) or UTC_ZONE
        tiers = (
            TierTracker(settings.tiers, zone, program_id, None, now, {}, {}, {})
            if settings.tiers is not None
            else None
        )
        return RulesPipeline(program, RulesState(program_id, None, now, zone), tiers, None)

    async def load_state(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Sequence[UUID],
        earliest: datetime,
        now: datetime,
        uow: UnitOfWork | None,
    ) -> RulesState:
        """Facts of ``member_ids`` for the program's rules, as of before this batch."""
        compiled = program.compiled
        zone = zone_named(program.settings.timezone) or UTC_ZONE
        state = RulesState(program.id, program.version, now, zone, uow)
        ids = sorted(set(member_ids))
        for member_id in ids:
            state.member(member_id)
        needs = compiled.needs
        if not ids:
            return state
        if campaigns := coupon_campaign_keys(program.settings):
            state.coupon_campaigns = await self.coupons.campaigns_by_keys(
                conn, program.id, campaigns
            )
        if "profile" in needs:
            for profile in await self.repository.profiles(conn, ids):
                facts = state.member(profile.member_id)
                facts.joined_at, facts.birthday = profile.joined_at, profile.birthday
                facts.tags, facts.attributes = profile.tags, profile.attributes
        if "history" in needs:
            await self._history(conn, state, ids, earliest - timedelta(days=compiled.window_days))
        if "segments" in needs:
            for member_id, keys in (await segment_keys.load(conn, program.id, ids)).items():
                state.member(member_id).segments = keys
        if "predictions" in needs:
            predictions = await prediction_facts.load(conn, program.id, ids)
            for member_id, predicted in predictions.items():
                facts = state.member(member_id)
                facts.churn_risk, facts.clv = predicted.churn_risk, predicted.clv
        if "usage" in needs:
            await self._usage(conn, state, program, ids, lock=uow is not None)
        # Whatever the rules need: a journey or staff may have granted a boost, a free
        # sample or free delivery to any member (read after the members' lock at the till).
        state.waiting = await self.benefits.waiting(conn, program.id, ids, now)
        for member_id, waiting in state.waiting.items():
            for item in waiting:
                if item.kind == "boost":
                    rule = item.source == "rule"
                    rule_id = item.source_key if rule else f"{item.source}:{item.source_key}"
                    percent = int(item.payload["factor_percent"])
                    boost = Boost(str(item.id), rule_id, percent, item.expires_at, item.issued_at)
                    state.member(member_id).boosts.append(boost)
        if "experiments" in needs:
            await self._experiments(conn, state, program, ids, now, uow)
        return state

    async def _history(
        self, conn: AsyncConnection, state: RulesState, ids: list[UUID], since: datetime
    ) -> None:
        for totals in await self.repository.history_totals(conn, ids):
            facts = state.member(totals.member_id)
            facts.purchase_count, facts.lifetime_spend = totals.count, totals.spend
            facts.last_purchase_at = totals.last
        for member_id, occurred_at, amount in await self.repository.recent_purchases(
            conn, ids, since
        ):
            state.member(member_id).recent.append((occurred_at, amount))

    async def _usage(
        self,
        conn: AsyncConnection,
        state: RulesState,
        program: ProgramContext,
        ids: list[UUID],
        *,
        lock: bool,
    ) -> None:
        rules = [r for r in program.compiled.rules if r.limits]
        member_rules = [r.id for r in rules if any(x.scope == "member" for x in r.limits)]
        program_rules = [r.id for r in rules if any(x.scope == "program" for x in r.limits)]
        if member_rules:
            for row in await self.repository.member_usage(conn, program.id, member_rules, ids):
                facts = state.member(UUID(hex=row.subject))
                facts.usage[(row.rule_id, row.period)] = (row.times, row.amount)
                state.usage_known.add((row.rule_id, row.subject, row.period))
        if program_rules:
            for row in await self.repository.program_usage(
                conn, program.id, program_rules, lock=lock
            ):
                state.program_usage[(row.rule_id, row.period)] = (row.times, row.amount)
                state.usage_known.add((row.rule_id, row.subject, row.period))

    async def _experiments(
        self,
        conn: AsyncConnection,
        state: RulesState,
        program: ProgramContext,
        ids: list[UUID],
        now: datetime,
        uow: UnitOfWork | None,
    ) -> None:
        recorded = await self.repository.arms(conn, program.id, ids)
        new_rows: list[dict[str, Any]] = []
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
                    new_rows.append(
                        {
                            "program_id": program.id,
                            "experiment": experiment.name,
                            "member_id": member_id,
                            "arm": arm,
                            "assigned_at": now,
                        }
                    )
        if uow is not None:
            self.repository.stage_arms(uow, new_rows)

    # --- a member's own view -------------------------------------------------------------

    async def member_offers(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> list[Offer]:
        """What rules gave the member that is still waiting for them now: boosts of their
        next purchase, access to rewards, coupons for later (each with the rule's name and
        description, where the program gives them), ending soonest first. Benefits used on
        the purchase that earned them (free delivery, a free sample) are not offers."""
        rows = await self.repository.active_benefits(conn, program.id, member_id, OFFER_KINDS, now)
        rules = {rule.id: rule for rule in program.settings.rules}
        offers = []
        for row in rows:
            rule = rules.get(row.rule_id)
            offers.append(
                Offer(
                    id=row.id,
                    kind=row.kind,
                    rule_id=row.rule_id,
                    title=rule.name if rule is not None else None,
                    description=rule.description if rule is not None else None,
                    payload=row.payload,
                    issued_at=row.issued_at,
                    expires_at=row.expires_at,
                )
            )
        return offers


def has_trigger(program: ProgramContext, trigger: str) -> bool:
    """Whether any of the program's rules runs on ``trigger``."""
    return any(trigger in rule.triggers for rule in program.compiled.rules)


def coupon_campaign_keys(settings: ProgramSettings) -> list[str]:
    """The coupon campaigns the program's rules issue codes of."""
    return sorted(
        {
            str(getattr(effect, "campaign", ""))
            for rule in settings.rules
            for effect in rule.effects
            if getattr(effect, "type", None) == "coupon"
        }
    )


earning_service = EarningService()
