"""Queries of a member's consent history, paged for the customer 360's timeline."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import ConsentRecord
from kopilka.models.base import table

records_t = table(ConsentRecord)


class ConsentHistoryRepository:
    async def member_records(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[Any]:
        query = select(records_t).where(
            records_t.c.member_id == member_id, records_t.c.program_id == program_id
        )
        if before is not None:
            query = query.where(tuple_(records_t.c.recorded_at, records_t.c.id) < tuple_(*before))
        query = query.order_by(records_t.c.recorded_at.desc(), records_t.c.id.desc())
        return list((await conn.execute(query.limit(limit))).all())


consent_history_repository = ConsentHistoryRepository()
