"""When two members' profiles are merged: the merged member's gift cards, and their wallet
if the survivor has none, become the survivor's."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict
from kopilka.giftcards import merge_repository
from kopilka.programs.service import ProgramContext


async def reassign_member(
    conn: AsyncConnection, program: ProgramContext, source: UUID, target: UUID
) -> int:
    """``source``'s cards become ``target``'s. A member has one wallet: ``source``'s moves
    when ``target`` has none; an empty one stays behind; two wallets with money are a 409
    (the money is the member's: they spend or are refunded one first)."""
    wallets = await merge_repository.wallets(conn, program.id, [source, target])
    theirs, ours = wallets.get(source), wallets.get(target)
    if theirs is not None and ours is not None and theirs.balance > 0:
        raise Conflict(
            "both members have a wallet and the merged one holds money: refund or spend it first",
            field="merged",
        )
    return await merge_repository.reassign(conn, program.id, source, target, wallet=ours is None)
