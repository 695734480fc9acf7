"""Every query of broadcasts: the broadcast rows, their recipients (taken in chunks and
marked done), and the counts of their messages. The broadcasts' service reads messages
through the same repository, so this one extends messaging's."""

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import insert_rows
from kopilka.kit.sql import one_of
from kopilka.messaging.records import BroadcastRow
from kopilka.messaging.repository import (
    QUEUED,
    MessagingRepository,
    broadcast_row,
    broadcasts_t,
    messages_t,
    newest_first,
    recipients_t,
)


class BroadcastRepository(MessagingRepository):
    async def add_broadcast(
        self,
        conn: AsyncConnection,
        row: dict[str, Any],
        members: Sequence[UUID],
        held_back: Collection[UUID] = frozenset(),
    ) -> None:
        """The broadcast and its recipients; those ``held_back`` (its holdout) are done
        from the start: nothing is ever made for them."""
        await conn.execute(broadcasts_t.insert().values(**row))
        rows = [(m, m in held_back) for m in members]
        await insert_rows(
            conn,
            recipients_t,
            [{"broadcast_id": row["id"], "member_id": m, "done": h, "holdout": h} for m, h in rows],
        )

    async def broadcast(
        self,
        conn: AsyncConnection,
        program_id: UUID | None,
        broadcast_id: UUID,
        *,
        lock: bool = False,
    ) -> BroadcastRow | None:
        query = select(broadcasts_t).where(broadcasts_t.c.id == broadcast_id)
        if program_id is not None:
            query = query.where(broadcasts_t.c.program_id == program_id)
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return broadcast_row(row) if row is not None else None

    async def broadcasts_page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[BroadcastRow]:
        b = broadcasts_t
        query = select(b).where(b.c.program_id == program_id).limit(limit)
        return [broadcast_row(r) for r in await conn.execute(newest_first(query, b, before))]

    async def due_broadcasts(self, conn: AsyncConnection, now: datetime) -> list[BroadcastRow]:
        b = broadcasts_t
        rows = await conn.execute(
            select(b)
            .where(b.c.status.in_(("scheduled", "running")), b.c.scheduled_at <= now)
            .order_by(b.c.scheduled_at, b.c.id)
        )
        return [broadcast_row(r) for r in rows]

    async def take_recipients(
        self, conn: AsyncConnection, broadcast_id: UUID, limit: int
    ) -> list[UUID]:
        """The next ``limit`` members not yet done, locked (a second worker skips them)."""
        r = recipients_t
        rows = await conn.execute(
            select(r.c.member_id)
            .where(r.c.broadcast_id == broadcast_id, r.c.done.is_(False))
            .order_by(r.c.member_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [row[0] for row in rows]

    async def mark_done(
        self, conn: AsyncConnection, broadcast_id: UUID, member_ids: Sequence[UUID]
    ) -> None:
        r = recipients_t
        await conn.execute(
            update(r)
            .where(r.c.broadcast_id == broadcast_id, one_of(conn, r.c.member_id, member_ids))
            .values(done=True)
        )

    async def done_count(self, conn: AsyncConnection, broadcast_id: UUID) -> int:
        r = recipients_t
        return int(
            (
                await conn.execute(
                    select(func.count()).where(r.c.broadcast_id == broadcast_id, r.c.done)
                )
            ).scalar_one()
        )

    async def done_counts(
        self, conn: AsyncConnection, broadcast_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """Members done per broadcast, for a page of broadcasts in one query."""
        if not broadcast_ids:
            return {}
        r = recipients_t
        rows = await conn.execute(
            select(r.c.broadcast_id, func.count())
            .where(one_of(conn, r.c.broadcast_id, broadcast_ids), r.c.done)
            .group_by(r.c.broadcast_id)
        )
        return {row[0]: int(row[1]) for row in rows}

    async def counts_of_broadcasts(
        self, conn: AsyncConnection, broadcast_ids: Sequence[UUID]
    ) -> dict[UUID, dict[str, int]]:
        """Messages by status per broadcast, for a page of broadcasts in one query."""
        if not broadcast_ids:
            return {}
        m = messages_t
        rows = await conn.execute(
            select(m.c.broadcast_id, m.c.status, func.count())
            .where(one_of(conn, m.c.broadcast_id, broadcast_ids))
            .group_by(m.c.broadcast_id, m.c.status)
        )
        found: dict[UUID, dict[str, int]] = {}
        for row in rows:
            found.setdefault(row[0], {})[row[1]] = int(row[2])
        return found

    async def cancel_queued(self, conn: AsyncConnection, broadcast_id: UUID, now: datetime) -> None:
        """A cancelled broadcast's messages not yet sent: skipped, with the reason."""
        m = messages_t
        ids = [
            r[0]
            for r in await conn.execute(
                select(m.c.id).where(m.c.broadcast_id == broadcast_id, m.c.status == QUEUED)
            )
        ]
        if not ids:
            return
        await conn.execute(
            update(m)
            .where(one_of(conn, m.c.id, ids))
            .values(
                status="skipped", error="not sent: broadcast cancelled", due_at=None, updated_at=now
            )
        )
        await self.add_statuses(
            conn,
            [
                {"message_id": i, "status": "skipped", "detail": "broadcast cancelled", "at": now}
                for i in ids
            ],
        )

    async def update_broadcast(
        self, conn: AsyncConnection, broadcast_id: UUID, **values: Any
    ) -> None:
        await conn.execute(
            update(broadcasts_t).where(broadcasts_t.c.id == broadcast_id).values(**values)
        )


broadcast_repository = BroadcastRepository()
