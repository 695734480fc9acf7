"""Gift cards: issue them (one, imported or in bulk), read them, top them up, pay with them,
refund payments, change their status or expiry, expire them. Never commits: the request,
command or job that calls owns the transaction.

Money is an integer number of minor units of the program's money currency. Every movement
locks the card's row and goes through :mod:`kopilka.giftcards.movements`.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.giftcards import domain
from kopilka.giftcards.domain import CARD_PATTERN, GIFT_CARD
from kopilka.giftcards.movements import (
    Movements,
    Operation,
    Request,
    card_dict,
    card_state,
    movement_event,
    movements,
    transaction_dict,
    transaction_row,
)
from kopilka.giftcards.repository import GiftCardRepository, gift_card_repository
from kopilka.kit.codes import capacity, check_pattern, generate_codes, normalise_code
from kopilka.kit.ids import new_id
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.outbox import events
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext

SOURCE_TYPE_LENGTH = 32
SOURCE_ID_LENGTH = 200
Issued = tuple[dict[str, Any], dict[str, Any]]  # (card row, its issue transaction row)


async def member_status(conn: AsyncConnection, program: ProgramContext, member_id: UUID) -> str:
    """The status of a member of the program; 404 naming ``member_id`` if there is none,
    409 if the profile was merged into another (money goes to the person's profile)."""
    found = (await member_service.resolve_many(conn, program, [MemberRef(id=member_id)]))[0]
    if found is None:
        raise NotFound(f"member {member_id} not found", field="member_id")
    if found[0] != member_id:
        raise Conflict(
            f"member {member_id} was merged into {found[0]}: use that id", field="member_id"
        )
    return found[1]


async def new_codes(
    repository: GiftCardRepository,
    conn: AsyncConnection,
    program_id: UUID,
    pattern: str,
    count: int,
) -> list[str]:
    """``count`` codes of ``pattern`` that no card of the program has. A pattern leaves so
    many possible codes that a clash is rare; a clashing code is drawn again. (Two issues
    at once drawing the same code: the unique constraint refuses the second, whose
    transaction runs again.)"""
    codes = generate_codes(pattern, count)
    while taken := await repository.codes_taken(conn, program_id, codes):
        kept = [c for c in codes if c not in taken]
        codes = kept + generate_codes(pattern, count - len(kept), taken=set(codes) | taken)
    return codes


class GiftCardService:
    def __init__(
        self,
        repository: GiftCardRepository = gift_card_repository,
        moves: Movements = movements,
    ) -> None:
        self.repository = repository
        self.moves = moves

    # --- issuing ------------------------------------------------------------------------------

    async def issue(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        amount: int,
        now: datetime,
        member_id: UUID | None = None,
        valid_days: int | None = None,
        code: str | None = None,
        source: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Issue one gift card worth ``amount`` minor units of the program's money currency,
        in the caller's transaction. A stable contract: the rewards shop issues gift
        certificates through it.

        ``valid_days`` None means the default validity (``domain.DEFAULT_VALID_DAYS`` days).
        ``code`` imports an existing card number (a ``Conflict`` if the program has it);
        without it a code is generated. ``source`` is (type, id) of what issued the card.
        Returns the card as the API shows it: ``id``, ``code``, ``balance``, ``currency``,
        ``expires_at``, ``status`` and the other fields of ``GiftCardOut``.
        """
        return await self.issue_card(
            conn,
            program,
            amount=amount,
            now=now,
            member_id=member_id,
            valid_days=valid_days,
            code=code,
            source=source,
        )

    async def issue_card(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        amount: int,
        now: datetime,
        member_id: UUID | None = None,
        valid_days: int | None = None,
        expires_at: datetime | None = None,
        never_expires: bool = False,
        code: str | None = None,
        source: tuple[str, str] | None = None,
        external_id: str | None = None,
        currency: str | None = None,
    ) -> dict[str, Any]:
        """``issue`` with every option of the API: an explicit expiry or none, the caller's
        id of the issue, the currency it expects."""
        if currency is not None and currency != program.settings.money_currency:
            raise InvalidInput(
                f"gift cards hold the program's money currency, {program.settings.money_currency}",
                field="currency",
            )
        expiry = domain.expiry_of(
            now, expires_at=expires_at, valid_days=valid_days, never_expires=never_expires
        )
        domain.check_amount(amount)
        source_type, source_id = _source(source)
        if member_id is not None:
            await member_status(conn, program, member_id)
        if code is None:
            code = (await new_codes(self.repository, conn, program.id, CARD_PATTERN, 1))[0]
        else:
            code = domain.card_code(code)
            if await self.repository.codes_taken(conn, program.id, [code]):
                raise Conflict(f"the program already has a card {code!r}", field="code")
        issued = _issued(program, [code], amount, expiry, now, member_id, (source_type, source_id))
        if external_id is not None:
            issued[0][1]["external_id"] = external_id
        await self._write(conn, program, issued)
        return card_dict(issued[0][0], now)

    async def issue_many(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        count: int,
        amount: int,
        now: datetime,
        pattern: str = CARD_PATTERN,
        valid_days: int | None = None,
        expires_at: datetime | None = None,
        never_expires: bool = False,
    ) -> list[dict[str, Any]]:
        """``count`` new cards of ``amount`` each with codes made from ``pattern``, written
        with a handful of multi-row statements."""
        expiry = domain.expiry_of(
            now, expires_at=expires_at, valid_days=valid_days, never_expires=never_expires
        )
        domain.check_amount(amount)
        if not 1 <= count <= domain.MAX_BATCH:
            raise InvalidInput(f"count must be between 1 and {domain.MAX_BATCH}", field="count")
        check_pattern(pattern)
        # Codes already made from the pattern count against its capacity: however many
        # batches it serves, a code guessed at random must almost never be a real one.
        in_use = await self.repository.count_matching(conn, program.id, pattern)
        if count + in_use > capacity(pattern):
            raise InvalidInput(
                f"pattern {pattern!r} has {in_use} codes in use and is too short for {count} "
                "more hard-to-guess codes: add random places",
                field="pattern",
            )
        codes = await new_codes(self.repository, conn, program.id, pattern, count)
        issued = _issued(program, codes, amount, expiry, now, None, (None, None))
        await self._write(conn, program, issued)
        return [card_dict(card, now) for card, _ in issued]

    async def _write(
        self, conn: AsyncConnection, program: ProgramContext, issued: Sequence[Issued]
    ) -> None:
        await self.repository.insert_cards(conn, [card for card, _ in issued])
        await self.repository.insert_transactions(conn, [tx for _, tx in issued])
        async with unit_of_work(conn, issued[0][1]["created_at"]) as uow:
            uow.emit(*(movement_event(program.id, c, t) for c, t in issued))

    # --- reading and administration -----------------------------------------------------------

    async def _card(
        self, conn: AsyncConnection, program: ProgramContext, code: str, *, lock: bool = False
    ) -> Row[Any]:
        normalised = normalise_code(code)
        row = await self.repository.by_code(conn, program.id, normalised, lock=lock)
        if row is None:
            raise NotFound(f"no gift card {normalised!r}", field="code")
        return row

    async def get(
        self, conn: AsyncConnection, program: ProgramContext, code: str, now: datetime
    ) -> dict[str, Any]:
        return card_dict((await self._card(conn, program, code))._mapping, now)

    async def card_id(self, conn: AsyncConnection, program: ProgramContext, code: str) -> UUID:
        card_id: UUID = (await self._card(conn, program, code)).id
        return card_id

    async def lock(self, conn: AsyncConnection, program: ProgramContext, card_id: UUID) -> None:
        """Take the card's row lock: the movements of one card run one after another."""
        await self.repository.by_id(conn, program.id, card_id, lock=True)

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        *,
        now: datetime,
        status: str | None = None,
        expires_at: datetime | None = None,
        never_expires: bool = False,
    ) -> dict[str, Any]:
        """Disable or enable a card, or give it another expiry (an expired card stays
        expired)."""
        row = await self._card(conn, program, code, lock=True)
        changed = domain.change(
            card_state(row._mapping),
            now,
            status=status,
            expires_at=expires_at,
            never_expires=never_expires,
        )
        values = {"status": changed.status, "expires_at": changed.expires_at, "updated_at": now}
        await self.repository.update_card(conn, row.id, values)
        before = card_state(row._mapping)
        if (before.status, before.expires_at) != (changed.status, changed.expires_at):
            async with unit_of_work(conn, now) as uow:
                uow.emit(
                    events.GiftCardChanged(
                        program_id=program.id,
                        member_id=row.member_id,
                        occurred_at=now,
                        card_id=row.id,
                        card_kind=row.kind,
                        status=changed.status,
                        previous_status=before.status,
                        expires_at=changed.expires_at,
                        previous_expires_at=before.expires_at,
                    )
                )
        return card_dict({**row._mapping, **values}, now)

    async def member_cards(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The gift cards given to the member, newest first."""
        await member_status(conn, program, member_id)
        rows = await self.repository.member_cards(
            conn, program.id, member_id, limit=limit, before=before
        )
        return [card_dict(row._mapping, now) for row in rows]

    async def transactions(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        *,
        limit: int,
        before_seq: int | None,
    ) -> list[dict[str, Any]]:
        """The card's journal, newest first."""
        row = await self._card(conn, program, code)
        found = await self.repository.transactions(conn, row.id, limit=limit, before_seq=before_seq)
        return [transaction_dict(tx._mapping) for tx in found]

    # --- movements ----------------------------------------------------------------------------

    async def top_up(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        *,
        amount: int,
        now: datetime,
        external_id: str | None = None,
        reference: str | None = None,
        currency: str | None = None,
    ) -> Operation:
        """Add ``amount`` to an active card."""
        row = await self._card(conn, program, code, lock=True)
        request = Request(now, amount, external_id, reference, currency)
        return await self.moves.top_up(conn, program, row, request)

    async def pay(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        *,
        amount: int,
        now: datetime,
        allow_partial: bool = False,
        external_id: str | None = None,
        reference: str | None = None,
        currency: str | None = None,
    ) -> Operation:
        """Take ``amount`` from an active, unexpired card that holds it (with
        ``allow_partial``: what it holds, up to ``amount``)."""
        row = await self._card(conn, program, code, lock=True)
        request = Request(now, amount, external_id, reference, currency, allow_partial)
        return await self.moves.pay(conn, program, row, request)

    async def refund(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        *,
        now: datetime,
        payment_id: UUID | None = None,
        payment_external_id: str | None = None,
        amount: int | None = None,
        external_id: str | None = None,
        reference: str | None = None,
    ) -> Operation:
        """Give back ``amount`` of a payment of this card (all that is left of it without
        ``amount``); never more than the payment took."""
        row = await self._card(conn, program, code, lock=True)
        request = Request(
            now,
            amount,
            external_id,
            reference,
            payment_id=payment_id,
            payment_external_id=payment_external_id,
        )
        return await self.moves.refund(conn, program, row, request)

    # --- expiry -------------------------------------------------------------------------------

    async def due(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        as_of: datetime,
        after: UUID | None,
        limit: int,
    ) -> list[UUID]:
        """Cards overdue at ``as_of`` and not closed yet, in id order after ``after``."""
        return await self.repository.due(conn, program.id, as_of, after, limit)

    async def expire_cards(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        card_ids: Sequence[UUID],
        as_of: datetime,
        now: datetime,
    ) -> int:
        """Close the cards of ``card_ids`` overdue at ``as_of``, each with an ``expiry``
        movement taking what is left on it; returns the amount taken. The ids come in id
        order, the order they are locked in."""
        taken = 0
        for card_id in card_ids:
            row = await self.repository.by_id(conn, program.id, card_id, lock=True)
            if row is not None:
                taken += await self.moves.expire(conn, program, row, as_of, now)
        return taken


def _issued(
    program: ProgramContext,
    codes: Sequence[str],
    amount: int,
    expiry: datetime | None,
    now: datetime,
    member_id: UUID | None,
    source: tuple[str | None, str | None],
) -> list[Issued]:
    card, movement = domain.issue(GIFT_CARD, amount, expiry)
    issued: list[Issued] = []
    for code in codes:
        row: dict[str, Any] = {
            "id": new_id(),
            "program_id": program.id,
            "code": code,
            "kind": GIFT_CARD,
            "member_id": member_id,
            "currency": program.settings.money_currency,
            "balance": card.balance,
            "initial_amount": amount,
            "status": card.status,
            "expires_at": expiry,
            "last_seq": card.seq,
            "source_type": source[0],
            "source_id": source[1],
            "issued_at": now,
            "updated_at": now,
        }
        issued.append((row, transaction_row(program.id, row["id"], movement, now)))
    return issued


def _source(source: tuple[str, str] | None) -> tuple[str | None, str | None]:
    if source is None:
        return None, None
    source_type, source_id = source
    if not (
        1 <= len(source_type) <= SOURCE_TYPE_LENGTH and 1 <= len(source_id) <= SOURCE_ID_LENGTH
    ):
        raise InvalidInput(
            f"source is (a type of 1 to {SOURCE_TYPE_LENGTH} characters, an id of 1 to "
            f"{SOURCE_ID_LENGTH})",
            field="source",
        )
    return source_type, source_id


gift_card_service = GiftCardService()
