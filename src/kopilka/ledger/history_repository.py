"""Queries of a member's movements of points in the order they happened."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import JournalEntry, Posting
from kopilka.models.base import table

entries_t = table(JournalEntry)
postings_t = table(Posting)


class MovementRepository:
    async def member_entries(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Any]:
        """The member's journal entries, newest first by when they happened (an imported
        year sits in its year, not on the day of the import)."""
        query = select(entries_t).where(
            entries_t.c.member_id == member_id, entries_t.c.program_id == program_id
        )
        if before is not None:
            query = query.where(tuple_(entries_t.c.occurred_at, entries_t.c.id) < tuple_(*before))
        query = query.order_by(entries_t.c.occurred_at.desc(), entries_t.c.id.desc())
        return list((await conn.execute(query.limit(limit))).all())

    async def postings_in(
        self, conn: AsyncConnection, entry_ids: list[UUID], accounts: tuple[str, ...]
    ) -> list[Any]:
        """The postings of these entries to these accounts (the member's side)."""
        if not entry_ids:
            return []
        query = select(
            postings_t.c.entry_id, postings_t.c.account, postings_t.c.currency, postings_t.c.amount
        ).where(postings_t.c.entry_id.in_(entry_ids), postings_t.c.account.in_(accounts))
        return list((await conn.execute(query.order_by(postings_t.c.id))).all())


movement_repository = MovementRepository()
