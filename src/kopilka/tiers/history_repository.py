"""Queries of a member's tier changes."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import TierChange
from kopilka.models.base import table

changes_t = table(TierChange)


class TierHistoryRepository:
    async def member_changes(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Any]:
        query = select(changes_t).where(
            changes_t.c.member_id == member_id, changes_t.c.program_id == program_id
        )
        if before is not None:
            query = query.where(tuple_(changes_t.c.at, changes_t.c.id) < tuple_(*before))
        query = query.order_by(changes_t.c.at.desc(), changes_t.c.id.desc())
        return list((await conn.execute(query.limit(limit))).all())


tier_history_repository = TierHistoryRepository()
