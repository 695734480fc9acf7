"""Recommendations: builds of a program's item-to-item model from its purchase lines, and what
a member is recommended from the stored model. Never commits.

A build is two steps so that a job can keep the write short: :meth:`prepare` reads the
co-purchases (aggregated in the database: one row per member and item) and fits the model
in a thread; :meth:`store` replaces the program's neighbours and popularity in the caller's
transaction. Reading a member's recommendations reads the stored tables only — a few indexed
queries, no numerical library (``docs/recommendations.md``).
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.recommendations import domain
from kopilka.recommendations.domain import Availability, Recommendation
from kopilka.recommendations.repository import (
    BuildRow,
    RecommendationRepository,
    recommendation_repository,
)
from kopilka.recommendations.schemas import (
    AvailabilityIn,
    AvailabilityList,
    AvailabilityOut,
    BuildOut,
    MemberRecommendations,
    ModelOut,
    RecommendationOut,
)
from kopilka.tiers.service import tier_service

# A member's recommendations read their purchases of the last two years: refills and
# favourite categories describe their habits now, and the read stays bounded.
HISTORY = timedelta(days=730)
MAX_LIMIT = 50


@dataclass(frozen=True)
class PreparedBuild:
    """A fitted model, not yet stored."""

    program_id: UUID
    built_at: datetime
    fitted: domain.Fitted
    popular: dict[str, tuple[int, int]]
    labels: dict[str, tuple[str | None, str | None]]
    seconds: float


def _build_out(row: BuildRow) -> BuildOut:
    return BuildOut(
        id=str(row.id),
        built_at=row.built_at,
        members=row.members,
        items=row.items,
        neighbours=row.neighbours,
        neighbours_per_item=row.neighbours_per_item,
        shrinkage=row.shrinkage,
        seconds=row.seconds,
    )


def recommendation_out(item: Recommendation) -> RecommendationOut:
    return RecommendationOut(
        sku=item.sku,
        name=item.name,
        category=item.category,
        reason=item.reason,
        score=item.score,
        related=list(item.related),
        usual_days=item.usual_days,
        days_since=item.days_since,
    )


class RecommendationService:
    def __init__(self, repository: RecommendationRepository = recommendation_repository) -> None:
        self.repository = repository

    # --- building the model --------------------------------------------------------------

    async def prepare(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> PreparedBuild:
        """Read the program's co-purchases up to ``now`` and fit the model (in a thread:
        the event loop keeps serving while numpy works)."""
        started = time.perf_counter()
        pairs = await self.repository.member_items(conn, program.id, now)
        labels = await self.repository.item_labels(conn, program.id)
        fitted = await asyncio.to_thread(domain.fit_neighbours, [(m, s) for m, s, _ in pairs])
        return PreparedBuild(
            program_id=program.id,
            built_at=now,
            fitted=fitted,
            popular=domain.popularity(pairs),
            labels=labels,
            seconds=time.perf_counter() - started,
        )

    async def store(self, conn: AsyncConnection, prepared: PreparedBuild) -> BuildOut:
        """Replace the program's model with ``prepared`` and record the build."""
        program_id = prepared.program_id
        build = {
            "id": new_id(),
            "program_id": program_id,
            "built_at": prepared.built_at,
            "members": prepared.fitted.members,
            "items": prepared.fitted.items,
            "neighbours": len(prepared.fitted.neighbours),
            "neighbours_per_item": domain.NEIGHBOURS_PER_ITEM,
            "shrinkage": domain.SHRINKAGE,
            "seconds": round(prepared.seconds, 3),
        }
        neighbours = [
            {
                "program_id": program_id,
                "sku": n.sku,
                "rank": n.rank,
                "neighbour": n.neighbour,
                "score": n.score,
                "together": n.together,
            }
            for n in prepared.fitted.neighbours
        ]
        popular = [
            {
                "program_id": program_id,
                "sku": sku,
                "name": prepared.labels.get(sku, (None, None))[0],
                "category": prepared.labels.get(sku, (None, None))[1],
                "buyers": buyers,
                "purchases": purchases,
            }
            for sku, (buyers, purchases) in sorted(prepared.popular.items())
        ]
        await self.repository.replace_model(conn, build, neighbours, popular)
        stored = await self.repository.last_build(conn, program_id)
        assert stored is not None  # written just above, in this transaction
        return _build_out(stored)

    async def build(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> BuildOut:
        """Prepare and store on one connection (the CLI and tests)."""
        return await self.store(conn, await self.prepare(conn, program, now))

    async def model(self, conn: AsyncConnection, program: ProgramContext) -> ModelOut:
        last = await self.repository.last_build(conn, program.id)
        return ModelOut(build=_build_out(last) if last else None)

    async def last_built_at(self, conn: AsyncConnection, program_id: UUID) -> datetime | None:
        last = await self.repository.last_build(conn, program_id)
        return last.built_at if last else None

    # --- a member's recommendations ------------------------------------------------------

    async def for_member(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        now: datetime,
        limit: int = 10,
    ) -> MemberRecommendations:
        """The member's recommendations (404 for a member of another program)."""
        await member_service.get(conn, program, member_id)
        found = await self.for_members(conn, program, [member_id], now, limit)
        return MemberRecommendations(
            member_id=str(member_id),
            built_at=await self.last_built_at(conn, program.id),
            items=[recommendation_out(r) for r in found.get(member_id, [])],
        )

    async def for_members(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Sequence[UUID],
        now: datetime,
        limit: int,
    ) -> dict[UUID, list[Recommendation]]:
        """Up to ``limit`` recommendations of each member (none for a member the program does
        not have): one read of their lines, then the neighbours and popular items they need."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
        ids = sorted(set(member_ids))
        if not ids:
            return {}
        lines = await self.repository.member_lines(conn, program.id, ids, now - HISTORY)
        recent = {m: domain.recent_items(ls) for m, ls in lines.items()}
        favourites = {m: domain.favourite_categories(ls) for m, ls in lines.items()}
        neighbours = await self.repository.neighbours_of(
            conn, program.id, {sku for items in recent.values() for sku in items}
        )
        popular = await self.repository.popular_in(
            conn,
            program.id,
            {c for cs in favourites.values() for c in cs},
            domain.POPULAR_PER_CATEGORY,
        )
        # Names of the neighbours the members never bought (their own lines name the rest).
        known = {p.sku for p in popular}
        labels = await self.repository.labels_of(
            conn, program.id, {n.neighbour for n in neighbours} - known
        )
        availability = {a.sku: a for a in await self.repository.availability(conn, program.id)}
        by_tier = any(a.tiers is not None for a in availability.values())
        found: dict[UUID, list[Recommendation]] = {}
        for member_id in ids:
            member_lines = lines.get(member_id, [])
            tier = (
                await tier_service.current_tier(conn, program, member_id, now) if by_tier else None
            )
            mine = set(recent.get(member_id, {}))
            found[member_id] = domain.recommend(
                member_lines,
                [n for n in neighbours if n.sku in mine],
                [*popular, *labels],
                availability,
                tier,
                now,
                limit,
            )
        return found

    # --- availability --------------------------------------------------------------------

    async def availability(
        self, conn: AsyncConnection, program: ProgramContext
    ) -> AvailabilityList:
        return AvailabilityList(
            items=[
                AvailabilityOut(
                    sku=a.sku,
                    available=a.available,
                    tiers=list(a.tiers) if a.tiers is not None else None,
                )
                for a in await self.repository.availability(conn, program.id)
            ]
        )

    async def set_availability(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        sku: str,
        body: AvailabilityIn,
        now: datetime,
    ) -> AvailabilityOut:
        """Mark an item out of stock or kept for some tiers (422 naming ``tiers`` for a tier
        the program's ladder does not have)."""
        if not 1 <= len(sku) <= 100:
            raise InvalidInput("sku must be 1–100 characters", field="sku")
        tiers = None if body.tiers is None else tuple(dict.fromkeys(body.tiers))
        if tiers is not None:
            ladder = program.settings.tiers
            known = [level.id for level in ladder.levels] if ladder is not None else []
            for index, tier in enumerate(tiers):
                if tier not in known:
                    raise InvalidInput(
                        f"no tier {tier!r} in the program's ladder"
                        + (f" (it has: {', '.join(known)})" if known else " (it has none)"),
                        field=f"tiers.{index}",
                    )
        item = Availability(sku, body.available, tiers)
        await self.repository.set_availability(conn, program.id, item, now)
        return AvailabilityOut(
            sku=sku, available=item.available, tiers=list(tiers) if tiers is not None else None
        )

    async def delete_availability(
        self, conn: AsyncConnection, program: ProgramContext, sku: str
    ) -> None:
        """The item is recommended to anyone again (404 if it had no row)."""
        if not await self.repository.delete_availability(conn, program.id, sku):
            raise NotFound(f"item {sku!r} has no availability set", field="sku")


recommendation_service = RecommendationService()
