"""Members' wallets: a member's own stored-value account (a card of kind ``wallet``), opened
by the first top-up, never expiring. Top up, pay, refund and read it through the member.
Never commits.

A blocked member can neither top up nor pay; refunds of earlier payments still reach the
wallet (the money is the member's).
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, InsufficientBalance, MemberBlocked, NotFound
from kopilka.giftcards import domain
from kopilka.giftcards.domain import WALLET, WALLET_PATTERN
from kopilka.giftcards.movements import (
    Movements,
    Operation,
    Request,
    card_dict,
    movements,
    transaction_dict,
)
from kopilka.giftcards.repository import GiftCardRepository, gift_card_repository
from kopilka.giftcards.service import member_status, new_codes
from kopilka.kit.ids import new_id
from kopilka.programs.service import ProgramContext


class WalletService:
    def __init__(
        self,
        repository: GiftCardRepository = gift_card_repository,
        moves: Movements = movements,
    ) -> None:
        self.repository = repository
        self.moves = moves

    async def get(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> dict[str, Any]:
        """The member's wallet; a member who never topped up has an empty one (no id yet)."""
        await member_status(conn, program, member_id)
        row = await self.repository.wallet(conn, program.id, member_id)
        if row is not None:
            return card_dict(row._mapping, now)
        empty = domain.open_wallet()
        return {
            "member_id": member_id,
            "id": None,
            "code": None,
            "currency": program.settings.money_currency,
            "balance": empty.balance,
            "available": empty.balance,
            "status": empty.status,
            "updated_at": None,
        }

    async def lock(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        now: datetime,
        *,
        open_: bool = False,
    ) -> Row[Any] | None:
        """Lock the member's wallet; with ``open_``, open it first if there is none."""
        row = await self.repository.wallet(conn, program.id, member_id, lock=True)
        if row is not None or not open_:
            return row
        await member_status(conn, program, member_id)  # a wallet only for the program's member
        empty = domain.open_wallet()
        code = (await new_codes(self.repository, conn, program.id, WALLET_PATTERN, 1))[0]
        await self.repository.insert_wallet(
            conn,
            {
                "id": new_id(),
                "program_id": program.id,
                "code": code,
                "kind": WALLET,
                "member_id": member_id,
                "currency": program.settings.money_currency,
                "balance": empty.balance,
                "initial_amount": 0,
                "status": empty.status,
                "expires_at": empty.expires_at,
                "last_seq": empty.seq,
                "source_type": None,
                "source_id": None,
                "issued_at": now,
                "updated_at": now,
            },
        )
        row = await self.repository.wallet(conn, program.id, member_id, lock=True)
        if row is None:  # the code drawn was taken meanwhile: the request runs again
            raise Conflict("the wallet could not be opened: try again", field="member_id")
        return row

    async def top_up(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        amount: int,
        now: datetime,
        external_id: str | None = None,
        reference: str | None = None,
        currency: str | None = None,
    ) -> Operation:
        """Put money in the member's wallet, opening it on the first top-up."""
        await _active(conn, program, member_id, "top up a wallet")
        row = await self.lock(conn, program, member_id, now, open_=True)
        assert row is not None
        request = Request(now, amount, external_id, reference, currency)
        return await self.moves.top_up(conn, program, row, request)

    async def pay(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        amount: int,
        now: datetime,
        allow_partial: bool = False,
        external_id: str | None = None,
        reference: str | None = None,
        currency: str | None = None,
    ) -> Operation:
        await _active(conn, program, member_id, "pay from a wallet")
        row = await self.lock(conn, program, member_id, now)
        if row is None:
            domain.check_amount(amount)
            raise InsufficientBalance(
                f"the member's wallet is empty, the payment needs {amount}",
                field="amount",
                balance=0,
            )
        request = Request(now, amount, external_id, reference, currency, allow_partial)
        return await self.moves.pay(conn, program, row, request)

    async def refund(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        now: datetime,
        payment_id: UUID | None = None,
        payment_external_id: str | None = None,
        amount: int | None = None,
        external_id: str | None = None,
        reference: str | None = None,
    ) -> Operation:
        """Give back (part of) a payment from the wallet; never more than it took."""
        await member_status(conn, program, member_id)
        row = await self.lock(conn, program, member_id, now)
        if row is None:
            raise NotFound("the member has no wallet", field="member_id")
        request = Request(
            now,
            amount,
            external_id,
            reference,
            payment_id=payment_id,
            payment_external_id=payment_external_id,
        )
        return await self.moves.refund(conn, program, row, request)

    async def transactions(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        limit: int,
        before_seq: int | None,
    ) -> list[dict[str, Any]]:
        """The wallet's journal, newest first (empty before the first top-up)."""
        await member_status(conn, program, member_id)
        row = await self.repository.wallet(conn, program.id, member_id)
        if row is None:
            return []
        found = await self.repository.transactions(conn, row.id, limit=limit, before_seq=before_seq)
        return [transaction_dict(tx._mapping) for tx in found]


async def _active(
    conn: AsyncConnection, program: ProgramContext, member_id: UUID, doing: str
) -> None:
    if await member_status(conn, program, member_id) == "blocked":
        raise MemberBlocked(f"a blocked member cannot {doing}", field="member_id")


wallet_service = WalletService()
