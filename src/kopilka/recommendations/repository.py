"""Every query of recommendations: the co-purchase history read set-wise for a build, the
model's tables replaced at once, what one member's recommendations read, and the items the
program does not recommend to everyone."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import insert_rows
from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import (
    ItemAvailability,
    ItemNeighbour,
    ItemPopularity,
    Purchase,
    PurchaseLine,
    RecommendationBuild,
)
from kopilka.models.base import table
from kopilka.recommendations.domain import Availability, Line, Neighbour, Popular

purchases_t = table(Purchase)
lines_t = table(PurchaseLine)
builds_t = table(RecommendationBuild)
neighbours_t = table(ItemNeighbour)
popularity_t = table(ItemPopularity)
availability_t = table(ItemAvailability)

# A purchase counts unless it was returned in full (as for the lifetime models); a line
# unless all of it came back.
COUNTED = or_(purchases_t.c.total == 0, purchases_t.c.returned_amount < purchases_t.c.total)
LINE_KEPT = lines_t.c.returned_quantity < lines_t.c.quantity


@dataclass(frozen=True)
class BuildRow:
    id: UUID
    program_id: UUID
    built_at: datetime
    members: int
    items: int
    neighbours: int
    neighbours_per_item: int
    shrinkage: float
    seconds: float


class RecommendationRepository:
    # --- a build -------------------------------------------------------------------------

    async def member_items(
        self, conn: AsyncConnection, program_id: UUID, until: datetime | None = None
    ) -> list[tuple[str, str, int]]:
        """(member, sku, counted purchases with it) of every member of the program, from
        purchases up to ``until`` (None: all); purchases without a member are not read."""
        p, ln = purchases_t.c, lines_t.c
        where = [p.program_id == program_id, p.member_id.is_not(None), COUNTED, LINE_KEPT]
        if until is not None:
            where.append(p.occurred_at <= until)
        rows = await conn.execute(
            select(p.member_id, ln.sku, func.count(func.distinct(ln.purchase_id)))
            .select_from(lines_t.join(purchases_t, p.id == ln.purchase_id))
            .where(*where)
            .group_by(p.member_id, ln.sku)
        )
        return [(str(m), sku, int(n)) for m, sku, n in rows]

    async def item_labels(
        self, conn: AsyncConnection, program_id: UUID
    ) -> dict[str, tuple[str | None, str | None]]:
        """sku → (name, category) as the program's lines give them (the greatest, should the
        tills have sent several)."""
        p, ln = purchases_t.c, lines_t.c
        rows = await conn.execute(
            select(ln.sku, func.max(ln.name), func.max(ln.category))
            .select_from(lines_t.join(purchases_t, p.id == ln.purchase_id))
            .where(p.program_id == program_id, p.member_id.is_not(None))
            .group_by(ln.sku)
        )
        return {sku: (name, category) for sku, name, category in rows}

    async def replace_model(
        self,
        conn: AsyncConnection,
        build: dict[str, Any],
        neighbours: Sequence[dict[str, Any]],
        popular: Sequence[dict[str, Any]],
    ) -> None:
        """The program's neighbours and popularity replaced by a build's, and the build
        recorded, in the caller's transaction: readers see one model or the other."""
        program_id = build["program_id"]
        await conn.execute(delete(neighbours_t).where(neighbours_t.c.program_id == program_id))
        await conn.execute(delete(popularity_t).where(popularity_t.c.program_id == program_id))
        if neighbours:
            await insert_rows(conn, neighbours_t, neighbours)
        if popular:
            await insert_rows(conn, popularity_t, popular)
        await insert_rows(conn, builds_t, [build])

    async def last_build(self, conn: AsyncConnection, program_id: UUID) -> BuildRow | None:
        b = builds_t.c
        row = (
            await conn.execute(
                select(*builds_t.c)
                .where(b.program_id == program_id)
                .order_by(b.built_at.desc(), b.id.desc())
                .limit(1)
            )
        ).first()
        return BuildRow(**row._mapping) if row else None

    # --- one member ----------------------------------------------------------------------

    async def member_lines(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Collection[UUID], since: datetime
    ) -> dict[UUID, list[Line]]:
        """The kept lines of the members' counted purchases since ``since``, per member."""
        p, ln = purchases_t.c, lines_t.c
        rows = await conn.execute(
            select(p.member_id, p.id, ln.sku, ln.name, ln.category, p.occurred_at)
            .select_from(lines_t.join(purchases_t, p.id == ln.purchase_id))
            .where(
                p.program_id == program_id,
                one_of(conn, p.member_id, member_ids),
                p.occurred_at >= since,
                COUNTED,
                LINE_KEPT,
            )
            .order_by(p.member_id, p.occurred_at, ln.line_no)
        )
        found: dict[UUID, list[Line]] = {}
        for member_id, purchase_id, sku, name, category, at in rows:
            found.setdefault(member_id, []).append(Line(str(purchase_id), sku, name, category, at))
        return found

    async def neighbours_of(
        self, conn: AsyncConnection, program_id: UUID, skus: Collection[str]
    ) -> list[Neighbour]:
        if not skus:
            return []
        n = neighbours_t.c
        rows = await conn.execute(
            select(n.sku, n.rank, n.neighbour, n.score, n.together)
            .where(n.program_id == program_id, one_of(conn, n.sku, skus))
            .order_by(n.sku, n.rank)
        )
        return [Neighbour(*row) for row in rows]

    async def popular_in(
        self, conn: AsyncConnection, program_id: UUID, categories: Collection[str], per: int
    ) -> list[Popular]:
        """Each category's ``per`` most bought items (one indexed read per category)."""
        found: list[Popular] = []
        p = popularity_t.c
        for category in sorted(categories):
            rows = await conn.execute(
                select(p.sku, p.name, p.category, p.buyers, p.purchases)
                .where(p.program_id == program_id, p.category == category)
                .order_by(p.buyers.desc(), p.sku)
                .limit(per)
            )
            found.extend(Popular(*row) for row in rows)
        return found

    async def labels_of(
        self, conn: AsyncConnection, program_id: UUID, skus: Collection[str]
    ) -> list[Popular]:
        if not skus:
            return []
        p = popularity_t.c
        rows = await conn.execute(
            select(p.sku, p.name, p.category, p.buyers, p.purchases).where(
                p.program_id == program_id, one_of(conn, p.sku, skus)
            )
        )
        return [Popular(*row) for row in rows]

    # --- availability --------------------------------------------------------------------

    async def availability(self, conn: AsyncConnection, program_id: UUID) -> list[Availability]:
        a = availability_t.c
        rows = await conn.execute(
            select(a.sku, a.available, a.tiers).where(a.program_id == program_id).order_by(a.sku)
        )
        return [
            Availability(sku, available, tuple(tiers) if tiers is not None else None)
            for sku, available, tiers in rows
        ]

    async def set_availability(
        self, conn: AsyncConnection, program_id: UUID, item: Availability, now: datetime
    ) -> None:
        values = {
            "available": item.available,
            "tiers": list(item.tiers) if item.tiers is not None else None,
            "updated_at": now,
        }
        dialect = postgresql if is_postgres(conn) else sqlite
        statement = dialect.insert(availability_t).values(
            program_id=program_id, sku=item.sku, **values
        )
        await conn.execute(
            statement.on_conflict_do_update(index_elements=["program_id", "sku"], set_=values)
        )

    async def delete_availability(self, conn: AsyncConnection, program_id: UUID, sku: str) -> bool:
        a = availability_t.c
        result = await conn.execute(
            delete(availability_t).where(a.program_id == program_id, a.sku == sku)
        )
        return bool(result.rowcount)


recommendation_repository = RecommendationRepository()
