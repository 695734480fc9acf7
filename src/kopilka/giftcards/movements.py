"""The one path every movement of a gift card or wallet takes. Never commits.

The caller has locked the card's row. A movement then: answers a retry of an earlier
movement with the same ``external_id`` from the journal; lets the pure domain decide; applies
the decision with a conditional update; appends the journal row and an outbox event. The
balance and sequence number written to the journal are the ones the update returned, so the
journal stays exact even for a caller that did not lock.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound
from kopilka.giftcards import domain
from kopilka.giftcards.domain import (
    ACTIVE,
    DISABLED,
    EXPIRED,
    EXPIRY,
    ISSUE,
    PAYMENT,
    REFUND,
    TOP_UP,
    Card,
    Movement,
)
from kopilka.giftcards.repository import GiftCardRepository, Moved, gift_card_repository
from kopilka.kit.ids import new_id
from kopilka.outbox import events
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext

Decision = Callable[[Card], tuple[Card, Movement]]


@dataclass(frozen=True)
class Operation:
    """A movement and the card it left; ``replayed`` when it is an earlier movement with
    the same external id."""

    card: dict[str, Any]
    transaction: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Request:
    """What a till asks of a card: ``amount`` (None for a refund: all that is left),
    the caller's id and reference, the currency it expects; for payments ``allow_partial``,
    for refunds the payment by id or by external id."""

    now: datetime
    amount: int | None = None
    external_id: str | None = None
    reference: str | None = None
    currency: str | None = None
    allow_partial: bool = False
    payment_id: UUID | None = None
    payment_external_id: str | None = None


def card_state(row: Mapping[Any, Any]) -> Card:
    return Card(
        kind=row["kind"],
        balance=int(row["balance"]),
        status=row["status"],
        expires_at=row["expires_at"],
        seq=int(row["last_seq"]),
    )


def card_dict(row: Mapping[Any, Any], now: datetime) -> dict[str, Any]:
    """A card as the API shows it; status and ``available`` as of ``now``."""
    card = card_state(row)
    return {
        "id": row["id"],
        "code": row["code"],
        "kind": row["kind"],
        "member_id": row["member_id"],
        "currency": row["currency"],
        "balance": card.balance,
        "available": card.available_at(now),
        "initial_amount": int(row["initial_amount"]),
        "status": card.status_at(now),
        "expires_at": row["expires_at"],
        "issued_at": row["issued_at"],
        "updated_at": row["updated_at"],
        "source_type": row["source_type"],
        "source_id": row["source_id"],
    }


TRANSACTION_FIELDS = (
    "id",
    "card_id",
    "seq",
    "kind",
    "amount",
    "balance_after",
    "external_id",
    "reference",
    "refund_of",
    "created_at",
)


def transaction_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {name: row[name] for name in TRANSACTION_FIELDS}


def transaction_row(
    program_id: UUID,
    card_id: UUID,
    movement: Movement,
    now: datetime,
    external_id: str | None = None,
    reference: str | None = None,
    refund_of: UUID | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "program_id": program_id,
        "card_id": card_id,
        "seq": movement.seq,
        "kind": movement.kind,
        "amount": movement.amount,
        "balance_after": movement.balance_after,
        "external_id": external_id,
        "reference": reference,
        "refund_of": refund_of,
        "created_at": now,
    }


_EVENTS: dict[str, type[events.GiftCardMoved]] = {
    TOP_UP: events.GiftCardToppedUp,
    PAYMENT: events.GiftCardUsed,
    REFUND: events.GiftCardRefunded,
    EXPIRY: events.GiftCardExpired,
}


def movement_event(
    program_id: UUID, card: Mapping[str, Any], tx: Mapping[str, Any]
) -> events.GiftCardMoved:
    """The domain event of a movement (``giftcard.issued``, ``giftcard.used`` …)."""
    common = {
        "program_id": program_id,
        "member_id": card["member_id"],
        "occurred_at": tx["created_at"],
        "card_id": card["id"],
        "card_kind": card["kind"],
        "transaction_id": tx["id"],
        "amount": tx["amount"],
        "balance": tx["balance_after"],
        "currency": card["currency"],
        "external_id": tx["external_id"],
        "reference": tx["reference"],
    }
    if tx["kind"] == ISSUE:
        return events.GiftCardIssued(**common, code=card["code"])
    return _EVENTS[tx["kind"]](**common)


class Movements:
    def __init__(self, repository: GiftCardRepository = gift_card_repository) -> None:
        self.repository = repository

    async def top_up(
        self, conn: AsyncConnection, program: ProgramContext, row: Row[Any], request: Request
    ) -> Operation:
        amount, now = _amount(request), request.now
        _check_currency(row, request.currency)
        replayed = await self._replay(
            conn,
            row,
            TOP_UP,
            request,
            lambda tx: tx.amount == amount and tx.reference == request.reference,
        )
        if replayed is not None:
            return replayed

        def decide(card: Card) -> tuple[Card, Movement]:
            return domain.top_up(card, amount, now)

        _, movement = decide(card_state(row._mapping))
        moved = await self.repository.credit(conn, row.id, movement.amount, now, (ACTIVE,))
        return await self._record(conn, program, row, movement, moved, request, decide)

    async def pay(
        self, conn: AsyncConnection, program: ProgramContext, row: Row[Any], request: Request
    ) -> Operation:
        amount, now = _amount(request), request.now
        _check_currency(row, request.currency)
        replayed = await self._replay(
            conn,
            row,
            PAYMENT,
            request,
            lambda tx: (
                tx.reference == request.reference
                and (-tx.amount == amount or (request.allow_partial and -tx.amount <= amount))
            ),
        )
        if replayed is not None:
            return replayed

        def decide(card: Card) -> tuple[Card, Movement]:
            return domain.pay(card, amount, now, allow_partial=request.allow_partial)

        _, movement = decide(card_state(row._mapping))
        moved = await self.repository.debit(conn, row.id, -movement.amount, now)
        return await self._record(conn, program, row, movement, moved, request, decide)

    async def refund(
        self, conn: AsyncConnection, program: ProgramContext, row: Row[Any], request: Request
    ) -> Operation:
        now = request.now
        payment = await self._payment(conn, row, request)
        replayed = await self._replay(
            conn,
            row,
            REFUND,
            request,
            lambda tx: (
                tx.refund_of == payment.id
                and tx.reference == request.reference
                and (request.amount is None or tx.amount == request.amount)
            ),
        )
        if replayed is not None:
            return replayed
        # Read under the card's lock: no other refund of this payment is written meanwhile,
        # so two refunds at once cannot both fit in what is left of it.
        refunded = await self.repository.refunded(conn, payment.id)

        def decide(card: Card) -> tuple[Card, Movement]:
            return domain.refund(
                card, paid=-payment.amount, refunded=refunded, amount=request.amount, now=now
            )

        _, movement = decide(card_state(row._mapping))
        moved = await self.repository.credit(conn, row.id, movement.amount, now, (ACTIVE, DISABLED))
        return await self._record(conn, program, row, movement, moved, request, decide, payment.id)

    async def expire(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        row: Row[Any],
        as_of: datetime,
        now: datetime,
    ) -> int:
        """Close a card overdue at ``as_of``, taking what is left on it; returns the amount
        taken (0 for an empty card or one not due any more)."""
        decided = domain.expire(card_state(row._mapping), as_of)
        if decided is None:  # given a later expiry since it was found due
            return 0
        _, movement = decided
        moved = await self.repository.close_expired(conn, row.id, row.balance, as_of, now)
        if moved is None or movement is None:
            return 0
        await self._write(conn, program, row, movement, moved, Request(now=now), None)
        return -movement.amount

    async def _payment(self, conn: AsyncConnection, row: Row[Any], request: Request) -> Row[Any]:
        if (request.payment_id is None) == (request.payment_external_id is None):
            raise InvalidInput("give payment_id or payment_external_id", field="payment_id")
        payment = await self.repository.payment(
            conn, row.id, payment_id=request.payment_id, external_id=request.payment_external_id
        )
        if payment is None:
            field = "payment_id" if request.payment_id is not None else "payment_external_id"
            raise NotFound("this card has no such payment", field=field)
        return payment

    async def _replay(
        self,
        conn: AsyncConnection,
        row: Row[Any],
        kind: str,
        request: Request,
        same: Callable[[Row[Any]], bool],
    ) -> Operation | None:
        """The earlier movement of this kind with the request's external id, if there is
        one; a different request with the same id is a conflict."""
        if request.external_id is None:
            return None
        tx = await self.repository.by_external_id(conn, row.id, kind, request.external_id)
        if tx is None:
            return None
        if not same(tx):
            raise IdempotencyConflict(
                f"external_id {request.external_id!r} was used before on this card with a "
                "different request",
                field="external_id",
            )
        return Operation(card_dict(row._mapping, request.now), transaction_dict(tx._mapping), True)

    async def _record(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        row: Row[Any],
        movement: Movement,
        moved: Moved | None,
        request: Request,
        decide: Decision,
        refund_of: UUID | None = None,
    ) -> Operation:
        if moved is None:
            # The conditional update found the card changed since it was read (a caller
            # that did not lock): deciding again on what it is now raises the reason.
            fresh = await self.repository.by_id(conn, program.id, row.id, lock=True)
            assert fresh is not None
            card = card_state(fresh._mapping)
            decide(card)
            raise Conflict("the card changed during the operation: try again", field=card.field)
        return await self._write(conn, program, row, movement, moved, request, refund_of)

    async def _write(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        row: Row[Any],
        movement: Movement,
        moved: Moved,
        request: Request,
        refund_of: UUID | None,
    ) -> Operation:
        balance, seq = moved
        # The balance and position the update returned are the truth; the decision chose
        # only the amount.
        written = Movement(movement.kind, movement.amount, balance, seq)
        tx = transaction_row(
            program.id,
            row.id,
            written,
            request.now,
            request.external_id,
            request.reference,
            refund_of,
        )
        await self.repository.insert_transactions(conn, [tx])
        card = {**row._mapping, "balance": balance, "last_seq": seq, "updated_at": request.now}
        if movement.kind == EXPIRY:
            card["status"] = EXPIRED
        async with unit_of_work(conn, tx["created_at"]) as uow:
            uow.emit(movement_event(program.id, card, tx))
        return Operation(card_dict(card, request.now), transaction_dict(tx))


def _amount(request: Request) -> int:
    if request.amount is None:
        raise InvalidInput("amount is required", field="amount")
    return request.amount


def _check_currency(row: Row[Any], currency: str | None) -> None:
    if currency is not None and currency != row.currency:
        raise InvalidInput(f"the card holds {row.currency}, not {currency}", field="currency")


movements = Movements()
