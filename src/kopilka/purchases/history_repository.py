"""Queries of a member's purchase history: their purchases with lines, their returns."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import Purchase, PurchaseLine, PurchaseReturn
from kopilka.models.base import table

purchases_t = table(Purchase)
lines_t = table(PurchaseLine)
returns_t = table(PurchaseReturn)


class PurchaseHistoryRepository:
    async def member_purchases(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Any]:
        """The member's purchases, newest first, keyset-paged on (occurred_at, id)."""
        query = select(purchases_t).where(
            purchases_t.c.member_id == member_id, purchases_t.c.program_id == program_id
        )
        if before is not None:
            query = query.where(
                tuple_(purchases_t.c.occurred_at, purchases_t.c.id) < tuple_(*before)
            )
        query = query.order_by(purchases_t.c.occurred_at.desc(), purchases_t.c.id.desc())
        return list((await conn.execute(query.limit(limit))).all())

    async def lines_of(self, conn: AsyncConnection, purchase_ids: Sequence[UUID]) -> list[Any]:
        if not purchase_ids:
            return []
        query = (
            select(lines_t)
            .where(lines_t.c.purchase_id.in_(purchase_ids))
            .order_by(lines_t.c.purchase_id, lines_t.c.line_no)
        )
        return list((await conn.execute(query)).all())

    async def member_returns(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Any]:
        query = select(returns_t).where(
            returns_t.c.member_id == member_id, returns_t.c.program_id == program_id
        )
        if before is not None:
            query = query.where(tuple_(returns_t.c.occurred_at, returns_t.c.id) < tuple_(*before))
        query = query.order_by(returns_t.c.occurred_at.desc(), returns_t.c.id.desc())
        return list((await conn.execute(query.limit(limit))).all())

    async def reassign(
        self, conn: AsyncConnection, program_id: UUID, source: UUID, target: UUID
    ) -> int:
        """``source``'s purchases, their lines and returns become ``target``'s."""
        moved = 0
        for t in (purchases_t, returns_t):
            result = await conn.execute(
                update(t)
                .where(t.c.program_id == program_id, t.c.member_id == source)
                .values(member_id=target)
            )
            moved += int(result.rowcount or 0) if t is purchases_t else 0
        await conn.execute(
            update(lines_t).where(lines_t.c.member_id == source).values(member_id=target)
        )
        return moved


purchase_history_repository = PurchaseHistoryRepository()
