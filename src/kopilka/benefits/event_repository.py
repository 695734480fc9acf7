"""Every query of program events (``program_events``) and members' answers
(``event_acceptances``).

Locking: an answer and a change of an event's capacity take the event row's lock first
(``FOR UPDATE`` on PostgreSQL; SQLite has one writer), then count the places taken. Under
READ COMMITTED the count is a new statement after the lock, so it sees every answer
committed before the lock was granted: two members never take the last place both.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import EventAcceptance, ProgramEvent
from kopilka.models.base import table

events_t = table(ProgramEvent)
answers_t = table(EventAcceptance)


class ProgramEventRepository:
    # --- events ------------------------------------------------------------------------------

    async def by_key(
        self, conn: AsyncConnection, program_id: UUID, key: str, *, lock: bool = False
    ) -> Any:
        """The program's event ``key`` (None if it has none); ``lock``: take its row lock
        for the rest of the transaction (PostgreSQL)."""
        query = select(events_t).where(events_t.c.program_id == program_id, events_t.c.key == key)
        if lock and is_postgres(conn):
            query = query.with_for_update()
        return (await conn.execute(query)).one_or_none()

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        status: str | None,
        not_over_at: datetime | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Any]:
        """The program's events, soonest first (by start, then id), after ``after``;
        ``not_over_at``: only those not ended (or, without an end, not started) then."""
        c = events_t.c
        query = select(events_t).where(c.program_id == program_id)
        if status is not None:
            query = query.where(c.status == status)
        if not_over_at is not None:
            query = query.where(func.coalesce(c.ends_at, c.starts_at) > not_over_at)
        if after is not None:
            query = query.where(tuple_(c.starts_at, c.id) > tuple_(*after))
        query = query.order_by(c.starts_at, c.id).limit(limit)
        return list((await conn.execute(query)).all())

    async def insert(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        """At once: the unique key decides a race between two creations of one key (the
        loser's transaction is retried and finds the winner's event)."""
        await conn.execute(events_t.insert().values(**row))

    async def update(self, conn: AsyncConnection, event_id: UUID, values: dict[str, Any]) -> None:
        await conn.execute(update(events_t).where(events_t.c.id == event_id).values(**values))

    # --- answers -----------------------------------------------------------------------------

    async def accepted_counts(
        self, conn: AsyncConnection, event_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """Members who accepted each event (events nobody accepted are left out)."""
        if not event_ids:
            return {}
        c = answers_t.c
        query = (
            select(c.event_id, func.count())
            .where(one_of(conn, c.event_id, set(event_ids)), c.status == "accepted")
            .group_by(c.event_id)
        )
        return {row[0]: int(row[1]) for row in (await conn.execute(query)).all()}

    async def answers(
        self, conn: AsyncConnection, member_id: UUID, event_ids: Sequence[UUID]
    ) -> dict[UUID, Any]:
        """The member's answer row to each of these events they answered."""
        if not event_ids:
            return {}
        c = answers_t.c
        query = select(answers_t).where(
            c.member_id == member_id, one_of(conn, c.event_id, set(event_ids))
        )
        return {row.event_id: row for row in (await conn.execute(query)).all()}

    async def accepted_not_over(
        self, conn: AsyncConnection, member_id: UUID, now: datetime
    ) -> list[Any]:
        """The events the member accepted that are not over (however many others there are)."""
        e, c = events_t.c, answers_t.c
        query = (
            select(events_t)
            .join(answers_t, c.event_id == e.id)
            .where(
                c.member_id == member_id,
                c.status == "accepted",
                func.coalesce(e.ends_at, e.starts_at) > now,
            )
            .order_by(e.starts_at, e.key)
        )
        return list((await conn.execute(query)).all())

    async def insert_answer(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(answers_t.insert().values(**row))

    async def update_answer(
        self, conn: AsyncConnection, event_id: UUID, member_id: UUID, values: dict[str, Any]
    ) -> None:
        c = answers_t.c
        await conn.execute(
            update(answers_t)
            .where(c.event_id == event_id, c.member_id == member_id)
            .values(**values)
        )

    async def guests(
        self,
        conn: AsyncConnection,
        event_id: UUID,
        *,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Any]:
        """Members who accepted the event, in the order they accepted (then by id)."""
        c = answers_t.c
        query = select(c.member_id, c.accepted_at).where(
            c.event_id == event_id, c.status == "accepted"
        )
        if after is not None:
            query = query.where(tuple_(c.accepted_at, c.member_id) > tuple_(*after))
        query = query.order_by(c.accepted_at, c.member_id).limit(limit)
        return list((await conn.execute(query)).all())


program_event_repository = ProgramEventRepository()
