"""The demo: a year of a simulated café-and-grocery chain pushed through the real engine.

Simulated time drives the clock: each day's sign-ups, purchases, returns and redemptions
are processed with the clock at that day, then the day's jobs run (pending points released,
overdue points expired), so the final state is what a year of live traffic would leave.
"""

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.crm.tasks import daily_facts
from kopilka.db import reading, run_in_transaction, transaction
from kopilka.demo.crm import CrmSummary, open_stores, set_up_team, support_days
from kopilka.demo.domain import SimEvent, SimulationConfig, simulate
from kopilka.demo.journeys import JourneyDays
from kopilka.demo.repository import demo_repository
from kopilka.demo.shop import SHOP_CHANCE, buy_something, open_shop
from kopilka.demo.till import Till, create_campaigns
from kopilka.errors import KopilkaError
from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.ledger.redemptions import points_redemption_service
from kopilka.ledger.service import ledger_service
from kopilka.members.schemas import MemberCreate, MemberRef
from kopilka.members.service import member_service
from kopilka.messaging.schemas import MessagingSettings
from kopilka.messaging.service import messaging_service
from kopilka.models import (
    Member,
    Purchase,
    PurchaseReturn,
    Redemption,
)
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import ProgramContext, program_service
from kopilka.purchases.claims import claim_service
from kopilka.purchases.returns import return_service
from kopilka.purchases.schemas import ClaimCreate, PurchaseCreate, ReturnCreate
from kopilka.purchases.service import purchase_service
from kopilka.segments.service import segment_service
from kopilka.segments.tasks import refresh_segments
from kopilka.tiers.service import tier_service

DEMO_SETTINGS: dict[str, Any] = {
    "money_currency": "RUB",
    "timezone": "Europe/Moscow",
    "currencies": [{"code": "points", "kind": "points", "name": "Бонусы"}],
    # 1 point for every full 10 roubles (1,000 kopecks) paid.
    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 1000}],
    # The rules of a café and grocery chain, read at every purchase from member state.
    "rules": [
        {
            "id": "win-back",
            "name": "Double points after 30 quiet days",
            "conditions": [{"type": "days_since_last_purchase", "min": 30}],
            "effects": [{"type": "multiplier", "factor": 2, "of": ["base"]}],
        },
        {
            "id": "happy-hours",
            "name": "Coffee happy hours: 3 points per 10 ₽ of coffee, weekdays 15–17",
            "conditions": [
                {"type": "weekday", "days": ["mon", "tue", "wed", "thu", "fri"]},
                {"type": "time_of_day", "start": "15:00", "end": "17:00"},
            ],
            "effects": [
                {
                    "type": "points_per_amount",
                    "points": 3,
                    "per": 1000,
                    "lines": {"categories": ["coffee"]},
                }
            ],
        },
        {
            "id": "regulars",
            "name": "Regulars (8 visits in 30 days) unlock the barista's choice",
            "conditions": [{"type": "purchases_in_window", "days": 30, "min": 8}],
            "effects": [{"type": "reward", "reward": "baristas-choice", "valid_days": 30}],
            "limits": {"periods": [{"per": "member", "period": "month", "times": 1}]},
        },
        {
            "id": "welcome",
            "name": "First purchase: double points on the next visit within 14 days",
            "conditions": [{"type": "first_purchase"}],
            "effects": [{"type": "boost", "factor": 2, "valid_days": 14}],
        },
        {
            "id": "welcome-coupon",
            "name": "First purchase: 10 % off coffee on the next visit within 30 days",
            "conditions": [{"type": "first_purchase"}],
            "effects": [{"type": "coupon", "campaign": "next-coffee"}],
        },
        {
            "id": "weekend-bonus",
            "name": "Test: half as many points again at weekends (only the test arm)",
            "conditions": [{"type": "weekday", "days": ["sat", "sun"]}],
            "effects": [{"type": "multiplier", "factor": 1.5, "of": ["base"]}],
            "experiment": {"experiment": "weekend-bonus", "arm": "test"},
        },
        {
            "id": "tier-rate",
            "name": "Silver and gold earn 25 % and 50 % more on the base rate",
            "effects": [{"type": "tier_multiplier", "of": ["base"]}],
        },
    ],
    # Does a weekend bonus bring more visits? Half the members get it, half are the control
    # (Analytics → Experiments reports the uplift with its interval and the cost).
    "experiments": [
        {
            "name": "weekend-bonus",
            "arms": [{"name": "test", "percent": 50}, {"name": "control", "percent": 50}],
        }
    ],
    # Spend or visits over the last 12 months; reviewed a year after reaching the tier.
    "tiers": {
        "levels": [
            {"id": "green", "name": "Green"},
            {
                "id": "silver",
                "name": "Silver",
                "qualify": {"spend": 2_500_000, "visits": 80},
                "benefits": {"earn_rate_percent": 125},
            },
            {
                "id": "gold",
                "name": "Gold",
                "qualify": {"spend": 8_000_000, "visits": 200},
                "benefits": {"earn_rate_percent": 150, "free_delivery": True},
            },
        ],
        "window": {"kind": "rolling", "months": 12},
        "downgrade": {"mode": "one_step"},
    },
    # A point pays a rouble at the till, for up to half of a basket (not household goods).
    "points_payment": {
        "currency": "points",
        "points": 1,
        "money": 100,
        "min_points": 50,
        "max_share_percent": 50,
        "excluded_categories": ["household"],
    },
    "expiry": {"policy": "days", "days": 180},
    "pending_days": 14,
    "hold_minutes": 30,
    "clawback": "allow_negative",
}
# Checks without a card, for the KPIs' conversion: a member forgets the card now and then
# and claims the receipt in the app a few days later; visitors who are not members buy too.
FORGOT_CARD = 0.05
CLAIM_AFTER_DAYS = (1, 6)
WALK_INS = 0.15  # checks of visitors, as a share of the day's members' checks
REDEEM_THRESHOLD = 300  # members redeem once they have this many points …
REDEEM_CHANCE = 0.35  # … with this chance at each visit


@dataclass
class DemoSummary:
    members: int = 0
    purchases: int = 0
    returns: int = 0
    redemptions: int = 0
    accounts: dict[str, int] = field(default_factory=dict)
    top_members: list[tuple[str, int]] = field(default_factory=list)
    earned_by_rule: dict[str, int] = field(default_factory=dict)
    benefits: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)  # members on each tier above entry
    codes_issued: int = 0
    codes_used: int = 0
    coupon_discount: int = 0  # minor units
    paid_with_points: tuple[int, int] = (0, 0)  # purchases, points
    rewards: dict[str, int] = field(default_factory=dict)  # redemptions per reward


def _days(events: Iterator[SimEvent]) -> Iterator[tuple[date, list[SimEvent]]]:
    for day, group in groupby(events, key=lambda e: e.occurred_at.date()):
        yield day, list(group)


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


DEMO_SLUG = "demo"


class DemoService:
    async def create_program(
        self, engine: AsyncEngine, base_url: str = "http://127.0.0.1:8000"
    ) -> ProgramContext:
        """The demo's program; ``base_url`` is where the demo will be served (its messages'
        links lead there)."""
        async with transaction(engine) as conn:
            program = await program_service.create(
                conn,
                slug=DEMO_SLUG,
                name="Demo café & grocery",
                settings=ProgramSettings.model_validate(DEMO_SETTINGS),
            )
            # Stores first: from then on a purchase names one of them.
            await open_stores(conn, program, clock.now())
            await create_campaigns(conn, program, clock.now())
            await open_shop(conn, program, clock.now())
            # The demo sends at once, whatever the hour it is run at: no quiet hours.
            await messaging_service.save_settings(
                conn,
                program,
                MessagingSettings(
                    quiet_hours=None,
                    links_url=base_url,
                    app_url=f"{base_url}/app/{DEMO_SLUG}/",
                    # The points-expiring journey tells of points expiring within 14 days.
                    expiring_days=14,
                ),
                clock.now(),
            )
            return program

    async def run(
        self,
        engine: AsyncEngine,
        program: ProgramContext,
        config: SimulationConfig,
        progress: Callable[[int], None] | None = None,
        journeys_from: int = 0,
    ) -> int:
        """Replay the simulation day by day; returns the number of events processed. The
        ready journeys are published on day ``journeys_from`` (0: the first) and run from
        then on."""
        rng = random.Random(config.seed)
        till = Till(random.Random(config.seed + 1))
        journeys = JourneyDays(engine, program, config.start + timedelta(days=journeys_from))
        processed = 0
        for day, events in _days(simulate(config)):
            await journeys.before(day)
            with clock.frozen(_end_of(day)):

                async def one_day(
                    conn: AsyncConnection, todo: list[SimEvent] = events, today: date = day
                ) -> None:
                    await self._day(conn, program, todo, till)
                    await self._redeem(conn, program, todo, rng)
                    # The day's scheduled jobs, in the same transaction: fewer commits.
                    for job in (tasks.RELEASE_PENDING, tasks.EXPIRE):
                        while (await tasks.run_chunk(conn, job, program, clock.now())).members:
                            pass
                    await self._review_tiers(conn, program, today)

                await run_in_transaction(engine, one_day)
                await journeys.after(clock.now(), day)
            processed += len(events)
            if progress is not None:
                progress(len(events))
        return processed

    async def _day(
        self, conn: AsyncConnection, program: ProgramContext, events: list[SimEvent], till: Till
    ) -> None:
        now = clock.now()
        sign_ups = [
            member_service.build(program, MemberCreate.model_validate(e.data), now)
            for e in events
            if e.kind == "member"
        ]
        if sign_ups:
            await member_service.register_many(conn, program, sign_ups, now)
        await self._claims_due(conn, program, till, now)
        purchases = [PurchaseCreate.model_validate(e.data) for e in events if e.kind == "purchase"]
        if purchases:
            purchases = self._without_cards(purchases, till, now)
            purchases = await till.prepare(conn, program, purchases)
            await purchase_service.ingest(conn, program, purchases, now)
        for event in events:
            if event.kind == "return":
                try:
                    await return_service.record(
                        conn, program, ReturnCreate.model_validate(event.data), now
                    )
                except KopilkaError:
                    continue  # a simulated return of a purchase that was already returned

    @staticmethod
    def _without_cards(
        purchases: list[PurchaseCreate], till: Till, now: datetime
    ) -> list[PurchaseCreate]:
        """Some members' checks made without the card (claimed later), and the day's
        walk-in visitors' checks (a copy of a random basket under a receipt of its own)."""
        rng = till.rng
        found: list[PurchaseCreate] = []
        for purchase in purchases:
            if purchase.member is not None and rng.random() < FORGOT_CARD:
                later = now + timedelta(days=rng.randint(*CLAIM_AFTER_DAYS))
                till.claims.append((later, purchase.external_id, str(purchase.member.external_id)))
                purchase = purchase.model_copy(update={"member": None})
            found.append(purchase)
        for n in range(round(len(purchases) * WALK_INS)):
            basket = rng.choice(purchases)
            found.append(
                basket.model_copy(
                    update={"member": None, "external_id": f"walk-in-{basket.external_id}-{n}"}
                )
            )
        return found

    @staticmethod
    async def _claims_due(
        conn: AsyncConnection, program: ProgramContext, till: Till, now: datetime
    ) -> None:
        """Receipts members claim in the app once they find them (as the rules were then)."""
        due = [c for c in till.claims if c[0] <= now]
        till.claims[:] = [c for c in till.claims if c[0] > now]
        for _, receipt, who in due:
            request = ClaimCreate(receipt=receipt, member=MemberRef(external_id=who))
            try:
                await claim_service.claim(conn, program, request, now)
            except KopilkaError:
                continue  # returned in full in the meantime, or the window closed

    async def _redeem(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        events: list[SimEvent],
        rng: random.Random,
    ) -> None:
        """Some of the day's shoppers spend points: most in one step, some through a hold
        that the till then captures or voids."""
        shoppers = sorted(
            {
                str(e.data["member"]["external_id"])  # type: ignore[index]
                for e in events
                if e.kind == "purchase"
            }
        )
        for external_id in shoppers:
            if rng.random() >= REDEEM_CHANCE:
                continue
            mode = "hold" if rng.random() < 0.2 else "one_step"
            settle = "captured" if rng.random() < 0.8 else "voided"
            await self._spend(conn, program, external_id, mode, settle, rng)

    async def _spend(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        external_id: str,
        mode: str,
        settle: str,
        rng: random.Random,
    ) -> None:
        member_id, status = await member_service.resolve(
            conn, program, MemberRef(external_id=external_id)
        )
        balance = (await ledger_service.balances(conn, program, member_id)).get("points")
        if balance is None or balance.available < REDEEM_THRESHOLD:
            return
        now = clock.now()
        if rng.random() < SHOP_CHANCE and await buy_something(
            conn, program, member_id, balance.available, rng, now
        ):
            return
        amount = min(balance.available, rng.choice((300, 500, 1000))) // 50 * 50
        view = await points_redemption_service.redeem(
            conn,
            program,
            member_id=member_id,
            member_status=status,
            currency="points",
            amount=amount,
            mode=mode,
            now=now,
            reason="demo: paid with points",
            external_id=None,
        )
        if mode == "hold":
            await points_redemption_service.settle_hold(
                conn, program, view.row["id"], capture_amount=None, now=now, outcome=settle
            )

    async def _review_tiers(
        self, conn: AsyncConnection, program: ProgramContext, day: date
    ) -> None:
        """The day's tier reviews (none fall due in a one-year demo unless it runs longer)."""
        day_ends = datetime.combine(day, time.max, tzinfo=UTC)
        due = await tier_service.repository.due(conn, program.id, day, day_ends, None, 10_000)
        if due:
            await tier_service.review_members(conn, program, due, day, clock.now())

    async def run_crm(self, engine: AsyncEngine, program: ProgramContext, seed: int) -> CrmSummary:
        """The CRM after the year: the team, the survey, a few days of the support desk."""
        rng = random.Random(seed + 2)

        async def work(conn: AsyncConnection) -> CrmSummary:
            now = clock.now()
            team = await set_up_team(conn, program, now)
            members = await member_service.active_ids(conn, program, now)
            return await support_days(conn, program, team, members, rng, now)

        return await run_in_transaction(engine, work)

    async def finish_crm(self, engine: AsyncEngine, program: ProgramContext) -> dict[str, int]:
        """After the worker delivered the year's events (member facts are current): the
        day's RFM scores and a full refresh of the segments, as the daily jobs would; the
        members per segment."""
        await daily_facts(engine, program.id, clock.now())
        await refresh_segments(engine, program.id)
        async with reading(engine) as conn:
            return {s.key: s.members for s in await segment_service.listing(conn, program)}

    async def summary(self, engine: AsyncEngine, program: ProgramContext) -> DemoSummary:
        async with reading(engine) as conn:
            summary = await self._summary(conn, program.id)
        if program.settings.tiers is not None:
            # Members back on the entry tier keep a row; they count with those never above it.
            entry = program.settings.tiers.levels[0].id
            summary.tiers = {t: n for t, n in summary.tiers.items() if t != entry}
        return summary

    async def _summary(self, conn: AsyncConnection, program_id: UUID) -> DemoSummary:
        repo = demo_repository
        issued, used, discount = await repo.coupons(conn, program_id)
        return DemoSummary(
            members=await repo.count(conn, Member, program_id),
            purchases=await repo.count(conn, Purchase, program_id),
            returns=await repo.count(conn, PurchaseReturn, program_id),
            redemptions=await repo.count(conn, Redemption, program_id),
            accounts=await repo.account_totals(conn, program_id, "points"),
            top_members=await repo.richest(conn, program_id, "points", 5),
            earned_by_rule=await repo.earned_by_rule(conn, program_id, "points"),
            benefits=await repo.benefits_by_kind(conn, program_id),
            tiers=await repo.members_by_tier(conn, program_id),
            codes_issued=issued,
            codes_used=used,
            coupon_discount=discount,
            paid_with_points=await repo.paid_with_points(conn, program_id, "points"),
            rewards=await repo.rewards_taken(conn, program_id),
        )

    async def member_to_sign_in(self, engine: AsyncEngine, program: ProgramContext) -> str | None:
        """An e-mail to sign in to the demo's app with: the richest member who has one."""
        async with reading(engine) as conn:
            return await demo_repository.richest_with_email(
                conn, program.id, program.settings.points_currency()
            )


demo_service = DemoService()
