"""What moves when two members' profiles are merged: their gift cards and their wallet."""

from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models import GiftCard
from kopilka.models.base import table

cards_t = table(GiftCard)


async def wallets(conn: AsyncConnection, program_id: UUID, members: list[UUID]) -> dict[UUID, Any]:
    """The wallets of these members (locked), by member."""
    t = cards_t
    rows = await conn.execute(
        select(t.c.id, t.c.member_id, t.c.balance)
        .where(t.c.program_id == program_id, t.c.kind == "wallet", t.c.member_id.in_(members))
        .order_by(t.c.id)
        .with_for_update()
    )
    return {r.member_id: r for r in rows}


async def reassign(
    conn: AsyncConnection, program_id: UUID, source: UUID, target: UUID, *, wallet: bool
) -> int:
    """``source``'s gift cards become ``target``'s; its wallet too if ``wallet``."""
    t = cards_t
    statement = update(t).where(t.c.program_id == program_id, t.c.member_id == source)
    if not wallet:
        statement = statement.where(t.c.kind != "wallet")
    result = await conn.execute(statement.values(member_id=target))
    return int(result.rowcount or 0)
