"""The demo's journeys: the ready journeys the package ships (``examples/journeys``),
published on the first simulated day with the segments and coupon campaigns they name, and
moved on after each simulated day as a running worker would — the consumers journeys
depend on deliver the day's events, then the daily jobs (predictions, segments, dated
entries) and the due steps run at the day's end."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.analytics.tasks import refit_program
from kopilka.coupons.schemas import CampaignCreate
from kopilka.coupons.service import coupon_service
from kopilka.db import reading, run_in_transaction
from kopilka.journeys import ready
from kopilka.journeys.service import journey_service
from kopilka.journeys.statistics import JourneyStats
from kopilka.journeys.tasks import advance_program, enter_daily
from kopilka.kit.clock import clock
from kopilka.outbox.consumers import Consumer, registry
from kopilka.programs.service import ProgramContext
from kopilka.segments.schemas import SegmentCreate
from kopilka.segments.service import segment_service
from kopilka.segments.tasks import refresh_segments
from kopilka.worker.modules import import_consumers
from kopilka.worker.runner import Worker

# The segments the ready journeys enter members from.
SEGMENTS: list[dict[str, Any]] = [
    {
        "key": "churn-risk",
        "name": "Склонны уйти (риск от 60 %)",
        "definition": {"type": "churn_risk", "min": 60},
    },
    {
        "key": "regulars",
        "name": "Постоянные гости (4 покупки за 60 дней)",
        "definition": {"type": "purchases", "min": 4, "last_days": 60},
    },
    {
        "key": "inactive-30",
        "name": "Месяц без покупок",
        "definition": {"type": "days_since_last_purchase", "min": 30},
    },
    {
        # The "new blend" of the free-sample journey: the shop's coffee beans, which
        # many coffee drinkers never buy.
        "key": "coffee-not-new-blend",
        "name": "Пьют кофе, но не брали зёрна",
        "definition": {
            "all": [
                {"type": "bought", "categories": ["coffee"], "last_days": 60},
                {"type": "bought", "skus": ["COF-006", "COF-007"], "never": True},
            ]
        },
    },
    {
        "key": "points-expiring-14",
        "name": "Баллы сгорают в ближайшие 14 дней",
        "definition": {"type": "points_expiring", "within_days": 14},
    },
]
# The coupon campaigns the ready journeys issue codes of.
CAMPAIGNS: list[dict[str, Any]] = [
    {
        "key": "next-visit",
        "name": "10 % off the next visit",
        "discount": {"kind": "percent", "value": 10},
        "valid_days": 14,
        "code_pattern": "NEXT-####-####",
    },
    {
        "key": "winback",
        "name": "150 ₽ off a basket of 500 ₽ or more: we miss you",
        "discount": {"kind": "fixed", "value": 15_000},
        "min_basket": 50_000,
        "valid_days": 30,
        "code_pattern": "BACK-####-####",
    },
]
# The consumers journeys depend on, in the order a round delivers to them: member facts
# (segments read them), then the journeys' own. Segments are refreshed in full once a day
# (cheaper for the demo's small program than re-evaluating them after every batch).
CONSUMERS = ("crm.facts", "journeys.runs")
REFIT_SECONDS = 3.0


async def publish_ready(conn: AsyncConnection, program: ProgramContext, now: datetime) -> None:
    """The ready journeys and what they name, published in ``program``."""
    for segment in SEGMENTS:
        await segment_service.create(conn, program, SegmentCreate.model_validate(segment), now)
    for campaign in CAMPAIGNS:
        await coupon_service.create_campaign(conn, program, CampaignCreate(**campaign), now)
    for key in ready.names():
        await journey_service.create(conn, program, key, ready.document(key), now)
        await journey_service.publish(conn, program, key, now)


class JourneyDays:
    """The ready journeys, published at the start of the day ``since``; after each
    simulated day from then on, what a running worker would have done for them by the
    day's end."""

    def __init__(self, engine: AsyncEngine, program: ProgramContext, since: date) -> None:
        import_consumers()
        self.engine = engine
        self.program = program
        self.since = since
        self.worker = Worker(engine, _consumers(CONSUMERS))

    async def before(self, today: date) -> None:
        if today != self.since:
            return
        with clock.frozen(datetime.combine(today, time(0), tzinfo=UTC)):

            async def publish(conn: AsyncConnection) -> None:
                await publish_ready(conn, self.program, clock.now())

            await run_in_transaction(self.engine, publish)

    async def after(self, now: datetime, today: date) -> None:
        if today < self.since:
            return
        program_id = self.program.id
        if today.day == 1 or today == self.since:
            # Churn risk comes from the lifetime models; the demo fits them when the
            # journeys start and then monthly (the daily job does weekly), giving the slow
            # Pareto/NBD a short budget: BG/NBD answers when it runs past it.
            await refit_program(
                self.engine, program_id, now, force=True, pareto_seconds=REFIT_SECONDS
            )
        # The day's events: member facts, entries and awaited events; then the segments as
        # they are at the day's end, and the entries their changes make.
        await self.worker.drain()
        await refresh_segments(self.engine, program_id)
        await self.worker.drain()
        await enter_daily(self.engine, program_id, now, today)
        await advance_program(self.engine, program_id, now)


def _consumers(names: tuple[str, ...]) -> list[Consumer]:
    found = [registry.get(name) for name in names]
    return [c for c in found if c is not None]


@dataclass(frozen=True)
class JourneyLine:
    """What a journey did over the simulated year, for the demo's summary."""

    key: str
    name: str
    entered: int
    held_out: int
    sent: int  # messages made by its send steps
    points: int  # points its points steps gave
    coupons: int
    offers: int
    has_goal: bool
    converted: int
    conversion: float | None
    holdout_conversion: float | None


async def journey_lines(engine: AsyncEngine, program: ProgramContext) -> list[JourneyLine]:
    """Each published journey's year."""
    async with reading(engine) as conn:
        journeys = await journey_service.listing(conn, program)
        found = []
        for journey in journeys:
            stats = await journey_service.stats(conn, program, journey.key)
            found.append(_line(journey.key, journey.name, journey.document or {}, stats))
        return found


def _line(key: str, name: str, document: dict[str, Any], stats: JourneyStats) -> JourneyLine:
    amounts = {s["id"]: int(s.get("amount", 0)) for s in document.get("steps", [])}
    taken: dict[str, int] = {}
    points = 0
    for step in stats.steps:
        for outcome, times in step.outcomes.items():
            taken[outcome] = taken.get(outcome, 0) + times
            if outcome == "credited":
                points += times * amounts.get(step.id, 0)
    return JourneyLine(
        key=key,
        name=name,
        entered=stats.entered,
        held_out=stats.held_out,
        sent=taken.get("sent", 0),
        points=points,
        coupons=taken.get("issued", 0),
        offers=taken.get("offered", 0),
        has_goal=document.get("goal") is not None,
        converted=stats.converted,
        conversion=stats.conversion,
        holdout_conversion=stats.holdout_conversion,
    )
