"""Attribution: what members bought within windows of their own (a journey's runs, each from
its entry), what an automation's gifts turned into — the discounts of its coupons used, the
value of its personal offers used where it is known — and members' past events as the
feature tables keep them, for when the outbox no longer does (``docs/journeys.md``). Reads
only; never commits.

Revenue is counted as the experiments count it: a purchase's total net of what was
returned. A point is valued as the liability values it (``liability.point_rate``).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import liability
from kopilka.analytics.attribution_repository import (
    AttributionRepository,
    attribution_repository,
)
from kopilka.errors import NotFound
from kopilka.programs.service import ProgramContext
from kopilka.rewards.service import reward_service
from kopilka.tiers import domain as tiers

# The events the feature tables keep (the outbox keeps every one while it is not purged).
KEPT_BY_TABLES = ("purchase.recorded", "member.registered", "tier.upgraded", "tier.downgraded")


@dataclass(frozen=True)
class Window:
    """A member's window [start, end)."""

    member_id: UUID
    start: datetime
    end: datetime


@dataclass(frozen=True)
class CouponsUsed:
    uses: int  # redemptions still applied
    discounts: int  # their discounts, minor units of money


@dataclass(frozen=True)
class OffersUsed:
    used: dict[str, int] = field(default_factory=dict)  # kind → offers used
    value: int = 0  # what the valued ones gave, minor units of money
    unvalued: int = 0  # used offers whose value is not known (a free sample, free delivery)


class AttributionService:
    def __init__(self, repository: AttributionRepository = attribution_repository) -> None:
        self.repository = repository

    async def revenue_in_windows(
        self, conn: AsyncConnection, program: ProgramContext, windows: Sequence[Window]
    ) -> list[int]:
        """Each window's revenue: its member's purchases in it, net of returns; in the
        order of ``windows``."""
        if not windows:
            return []
        start = min(w.start for w in windows)
        end = max(w.end for w in windows)
        members = sorted({w.member_id for w in windows})
        bought: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)
        for member_id, at, net in await self.repository.purchases_of(
            conn, program.id, members, start, end
        ):
            bought[member_id].append((at, net))
        return [
            sum(net for at, net in bought.get(w.member_id, ()) if w.start <= at < w.end)
            for w in windows
        ]

    async def coupons_used(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        source_type: str,
        source_ids: Sequence[str],
    ) -> CouponsUsed:
        """The uses and discounts of the codes issued from these sources."""
        if not source_ids:
            return CouponsUsed(0, 0)
        uses, discounts = await self.repository.coupon_use(
            conn, program.id, source_type, source_ids
        )
        return CouponsUsed(uses, discounts)

    async def offers_used(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        source_type: str,
        source_id: str,
        now: datetime,
    ) -> OffersUsed:
        """The personal offers granted from this source that were used, and what they gave
        where it is known: a boost's extra points (from the purchase that used it) and a
        reward offer's points the member did not pay (the reward's price now less the
        personal price), both valued as the liability values points. A free sample or free
        delivery has no price here: counted as unvalued."""
        rows = await self.repository.offers_used(conn, program.id, source_type, source_id)
        used: dict[str, int] = defaultdict(int)
        for _, kind, _, _ in rows:
            used[kind] += 1
        value = unvalued = 0
        boosts = [(i, by) for i, kind, _, by in rows if kind == "boost"]
        extra, unknown = await self._boost_points(conn, program, boosts)
        rate = liability.point_rate(program.settings, program.settings.points_currency())
        if rate is None:
            unvalued += len(boosts)
        else:
            value += rate.value(extra)
            unvalued += unknown
        for _, kind, payload, _ in rows:
            if kind == "reward":
                worth = await self._reward_discount(conn, program, payload, now)
                if worth is None:
                    unvalued += 1
                else:
                    value += worth
            elif kind != "boost":
                unvalued += 1
        return OffersUsed(dict(used), value, unvalued)

    async def _boost_points(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        boosts: Sequence[tuple[UUID, str | None]],
    ) -> tuple[int, int]:
        """(extra points the boosts gave, boosts whose purchase says nothing of them)."""
        purchases: dict[UUID, UUID] = {}
        for benefit_id, used_by in boosts:
            try:
                purchases[benefit_id] = UUID(str(used_by))
            except ValueError:
                continue
        applied = await self.repository.applied_benefits(
            conn, program.id, sorted(set(purchases.values()))
        )
        extra = unknown = 0
        for benefit_id, _ in boosts:
            items = applied.get(purchases.get(benefit_id, UUID(int=0)), [])
            item = next((a for a in items if a.get("id") == str(benefit_id)), None)
            amount = item.get("amount") if item is not None else None
            if type(amount) is int:
                extra += amount
            else:
                unknown += 1
        return extra, unknown

    async def _reward_discount(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        payload: dict[str, object],
        now: datetime,
    ) -> int | None:
        key, price = payload.get("reward"), payload.get("price")
        if not isinstance(key, str):
            return None
        try:
            reward = await reward_service.get(conn, program, key, None, now)
        except NotFound:
            return None
        rate = liability.point_rate(program.settings, reward.currency)
        if rate is None:
            return None
        paid = price if type(price) is int else reward.price
        return rate.value(max(reward.price - paid, 0))

    # --- members' past events from the feature tables ---------------------------------------

    async def event_members(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        topic: str,
        start: datetime,
        end: datetime,
    ) -> int | None:
        """How many members had an event of ``topic`` in [start, end), as the feature
        tables tell it; None for an event they do not keep."""
        if topic == "purchase.recorded":
            return await self.repository.purchase_members(conn, program.id, start, end)
        if topic == "member.registered":
            return await self.repository.registration_members(conn, program.id, start, end)
        if topic in ("tier.upgraded", "tier.downgraded"):
            return len(await self._tier_times(conn, program, topic, start, end))
        return None

    async def event_times(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        topic: str,
        start: datetime,
        end: datetime,
        *,
        first: int | None = None,
        members: Sequence[UUID] | None = None,
    ) -> dict[UUID, list[datetime]] | None:
        """Member → the instants of their events of ``topic`` in [start, end), in order,
        of the ``first`` members by id or of ``members``; None for an event the feature
        tables do not keep. A purchase counts as recorded when it happened (one recorded
        without a member and claimed later counts too)."""
        if topic == "purchase.recorded":
            return await self.repository.purchase_times(
                conn, program.id, start, end, first=first, members=members
            )
        if topic == "member.registered":
            found = await self.repository.registrations(
                conn, program.id, start, end, first=first, members=members
            )
            return {m: [at] for m, at in found.items()}
        if topic in ("tier.upgraded", "tier.downgraded"):
            times = await self._tier_times(conn, program, topic, start, end)
            if members is not None:
                wanted = set(members)
                return {m: t for m, t in times.items() if m in wanted}
            chosen = sorted(times)[:first] if first is not None else sorted(times)
            return {m: times[m] for m in chosen}
        return None

    async def _tier_times(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        topic: str,
        start: datetime,
        end: datetime,
    ) -> dict[UUID, list[datetime]]:
        """Upgrades or downgrades by the ladder's order, as the tiers' service tells them
        apart when it records a change."""
        ladder = program.settings.tiers
        found: dict[UUID, list[datetime]] = defaultdict(list)
        if ladder is None:
            return {}
        up = topic == "tier.upgraded"
        for member_id, at, before, after in await self.repository.tier_changes(
            conn, program.id, start, end
        ):
            if (tiers.rank(ladder, after) > tiers.rank(ladder, before)) == up:
                found[member_id].append(at)
        return dict(found)


attribution_service = AttributionService()
