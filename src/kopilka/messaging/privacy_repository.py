"""Queries that remove members' messages: one member's texts erased, old messages purged."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import Message, MessageStatus, PushSubscriptionRow
from kopilka.models.base import table

messages_t = table(Message)
statuses_t = table(MessageStatus)
subscriptions_t = table(PushSubscriptionRow)


async def erase_member(conn: AsyncConnection, program_id: UUID, member_id: UUID) -> int:
    """Blank what the member's messages said and where they went; their kind, channel,
    status and times stay (the program's counts). Their push subscriptions go."""
    result = await conn.execute(
        update(messages_t)
        .where(messages_t.c.program_id == program_id, messages_t.c.member_id == member_id)
        .values(to_address=None, subject=None, body="", html=None, link=None, extra={})
    )
    await conn.execute(
        delete(subscriptions_t).where(
            subscriptions_t.c.program_id == program_id, subscriptions_t.c.member_id == member_id
        )
    )
    return int(result.rowcount or 0)


async def purge_before(
    conn: AsyncConnection, program_id: UUID, before: datetime, limit: int
) -> int:
    """Delete up to ``limit`` of the program's messages made before ``before`` (their
    status lines with them); how many went."""
    ids = [
        r[0]
        for r in (
            await conn.execute(
                select(messages_t.c.id)
                .where(messages_t.c.program_id == program_id, messages_t.c.created_at < before)
                .limit(limit)
            )
        ).all()
    ]
    if not ids:
        return 0
    await conn.execute(delete(statuses_t).where(statuses_t.c.message_id.in_(ids)))
    await conn.execute(delete(messages_t).where(messages_t.c.id.in_(ids)))
    return len(ids)
