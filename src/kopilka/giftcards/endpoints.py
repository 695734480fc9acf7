"""HTTP routes of gift cards and members' wallets.

Value-moving routes are idempotent: the body's ``external_id``, or else the
``Idempotency-Key`` header, names the request within the card (or the member's wallet) and
the kind of movement; a retry gets the first answer and moves nothing, the same key with
another body is a 409. The fields of a movement's body are the service's keyword arguments.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.giftcards.movements import Operation
from kopilka.giftcards.schemas import (
    GiftCardBatchCreate,
    GiftCardBatchOut,
    GiftCardCreate,
    GiftCardOut,
    GiftCardPage,
    GiftCardUpdate,
    OperationOut,
    PaymentCreate,
    RefundCreate,
    TopUpCreate,
    TransactionOut,
    TransactionPage,
    WalletOut,
)
from kopilka.giftcards.service import gift_card_service
from kopilka.giftcards.wallets import wallet_service
from kopilka.http import (
    EngineDep,
    in_transaction,
    json_response,
    read_only,
    requires,
)
from kopilka.idempotency.service import idempotency_store
from kopilka.kit import pagination
from kopilka.kit.clock import clock
from kopilka.kit.codes import qr_svg
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1", tags=["gift cards"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Limit = Annotated[int, Query(ge=1, le=500)]
Work = Callable[[AsyncConnection, ProgramContext], Awaitable[Any]]


def _operation_out(operation: Operation) -> dict[str, Any]:
    out = OperationOut(
        card=GiftCardOut.model_validate(operation.card),
        transaction=TransactionOut.model_validate(operation.transaction),
    )
    return out.model_dump(mode="json")


async def _once(
    engine: AsyncEngine,
    principal: Principal,
    body: BaseModel,
    header: str | None,
    scope: Work,
    lock: Work,
    operation: Work,
) -> JSONResponse:
    """``operation`` once per idempotency key, in one transaction. ``scope`` names what the
    key is scoped to; ``lock`` takes the lock a retry racing its first attempt waits on."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        external_id = getattr(body, "external_id", None)
        prefix = await scope(conn, program)
        key = (
            f"{prefix}:id:{external_id}"
            if external_id is not None
            else (f"{prefix}:key:{header}" if header is not None else None)
        )

        async def locked() -> None:
            await lock(conn, program)

        async def run() -> dict[str, Any]:
            result: dict[str, Any] = await operation(conn, program)
            return result

        return await idempotency_store.run_once(
            conn, program.id, key, body, run, locked, external_id=external_id
        )

    status_code, result, replayed = await in_transaction(engine, principal, work)
    return json_response(result, status_code, replayed=replayed)


async def _card_movement(
    engine: AsyncEngine,
    principal: Principal,
    code: str,
    kind: str,
    body: BaseModel,
    header: str | None,
    move: Callable[[AsyncConnection, ProgramContext], Awaitable[Operation]],
) -> JSONResponse:
    card: list[UUID] = []

    async def scope(conn: AsyncConnection, program: ProgramContext) -> str:
        card[:] = [await gift_card_service.card_id(conn, program, code)]
        return f"gift-card:{card[0]}:{kind}"

    async def lock(conn: AsyncConnection, program: ProgramContext) -> None:
        await gift_card_service.lock(conn, program, card[0])

    async def operation(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return _operation_out(await move(conn, program))

    return await _once(engine, principal, body, header, scope, lock, operation)


async def _wallet_movement(
    engine: AsyncEngine,
    principal: Principal,
    member_id: UUID,
    kind: str,
    body: BaseModel,
    header: str | None,
    move: Callable[[AsyncConnection, ProgramContext], Awaitable[Operation]],
) -> JSONResponse:
    async def scope(conn: AsyncConnection, program: ProgramContext) -> str:
        return f"wallet:{member_id}:{kind}"

    async def lock(conn: AsyncConnection, program: ProgramContext) -> None:
        await wallet_service.lock(conn, program, member_id, clock.now(), open_=kind == "top_up")

    async def operation(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return _operation_out(await move(conn, program))

    return await _once(engine, principal, body, header, scope, lock, operation)


async def _no_lock(conn: AsyncConnection, program: ProgramContext) -> None:
    # Two issues with one key at once: the second's answer collides with the first's on the
    # idempotency record's key, and its transaction runs again to replay the first.
    return None


def _page(items: list[dict[str, Any]], limit: int) -> TransactionPage:
    cursor = pagination.encode_cursor(items[-1]["seq"]) if len(items) == limit else None
    return TransactionPage(
        items=[TransactionOut.model_validate(i) for i in items], next_cursor=cursor
    )


# --- gift cards -------------------------------------------------------------------------------


@router.post("/gift-cards", status_code=201, response_model=GiftCardOut)
async def issue_gift_card(
    body: GiftCardCreate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Issue a gift card: a generated code, or ``code`` to import an existing card number.
    Without an expiry it is valid for 365 days."""

    async def scope(conn: AsyncConnection, program: ProgramContext) -> str:
        return "gift-card:issue"

    async def operation(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        card = await gift_card_service.issue_card(
            conn,
            program,
            amount=body.amount,
            now=clock.now(),
            member_id=body.member_id,
            valid_days=body.valid_days,
            expires_at=body.expires_at,
            never_expires=body.never_expires,
            code=body.code,
            external_id=body.external_id,
            currency=body.currency,
        )
        return GiftCardOut.model_validate(card).model_dump(mode="json")

    return await _once(engine, principal, body, idempotency_key, scope, _no_lock, operation)


@router.post("/gift-cards/batch", status_code=201, response_model=GiftCardBatchOut)
async def issue_gift_cards(
    body: GiftCardBatchCreate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Issue ``count`` cards of one amount, their codes made from ``pattern``."""

    async def scope(conn: AsyncConnection, program: ProgramContext) -> str:
        return "gift-card:batch"

    async def operation(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        cards = await gift_card_service.issue_many(
            conn,
            program,
            count=body.count,
            amount=body.amount,
            now=clock.now(),
            pattern=body.pattern,
            valid_days=body.valid_days,
            expires_at=body.expires_at,
            never_expires=body.never_expires,
        )
        out = GiftCardBatchOut(
            count=len(cards), cards=[GiftCardOut.model_validate(c) for c in cards]
        )
        return out.model_dump(mode="json")

    return await _once(engine, principal, body, idempotency_key, scope, _no_lock, operation)


@router.get("/gift-cards/{code}", response_model=GiftCardOut)
async def get_gift_card(
    code: str, principal: Annotated[Principal, requires(P.MEMBERS_READ)], engine: EngineDep
) -> GiftCardOut:
    """The card's balance, what a payment can take now, its status and expiry."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> GiftCardOut:
        card = await gift_card_service.get(conn, program, code, clock.now())
        return GiftCardOut.model_validate(card)

    return await read_only(engine, principal, work)


@router.patch("/gift-cards/{code}", response_model=GiftCardOut)
async def update_gift_card(
    code: str,
    body: GiftCardUpdate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> GiftCardOut:
    """Disable a card (lost, stolen) or enable it again; extend or shorten its expiry, or
    take it away with ``never_expires``. An expired card cannot be changed."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> GiftCardOut:
        card = await gift_card_service.update(
            conn,
            program,
            code,
            now=clock.now(),
            status=body.status,
            expires_at=body.expires_at,
            never_expires=body.never_expires,
        )
        return GiftCardOut.model_validate(card)

    return await in_transaction(engine, principal, work)


@router.get(
    "/gift-cards/{code}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def gift_card_qr(
    code: str, principal: Annotated[Principal, requires(P.MEMBERS_READ)], engine: EngineDep
) -> Response:
    """The card's code as a QR code (SVG), for printing or the member app."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> str:
        card = await gift_card_service.get(conn, program, code, clock.now())
        return qr_svg(card["code"])

    return Response(await read_only(engine, principal, work), media_type="image/svg+xml")


@router.get("/gift-cards/{code}/transactions", response_model=TransactionPage)
async def gift_card_transactions(
    code: str,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Limit = 50,
    cursor: str | None = None,
) -> TransactionPage:
    """The card's movements, newest first."""
    before = pagination.decode_number_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> TransactionPage:
        items = await gift_card_service.transactions(
            conn, program, code, limit=limit, before_seq=before
        )
        return _page(items, limit)

    return await read_only(engine, principal, work)


@router.post("/gift-cards/{code}/top-ups", status_code=201, response_model=OperationOut)
async def top_up_gift_card(
    code: str,
    body: TopUpCreate,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Add money to an active card."""

    async def move(conn: AsyncConnection, program: ProgramContext) -> Operation:
        return await gift_card_service.top_up(
            conn, program, code, now=clock.now(), **body.model_dump()
        )

    return await _card_movement(engine, principal, code, "top_up", body, idempotency_key, move)


@router.post("/gift-cards/{code}/payments", status_code=201, response_model=OperationOut)
async def pay_with_gift_card(
    code: str,
    body: PaymentCreate,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Pay with the card: refused (422) beyond its balance unless ``allow_partial``, and
    refused (409) once it has expired or while it is disabled."""

    async def move(conn: AsyncConnection, program: ProgramContext) -> Operation:
        return await gift_card_service.pay(
            conn, program, code, now=clock.now(), **body.model_dump()
        )

    return await _card_movement(engine, principal, code, "payment", body, idempotency_key, move)


@router.post("/gift-cards/{code}/refunds", status_code=201, response_model=OperationOut)
async def refund_gift_card_payment(
    code: str,
    body: RefundCreate,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Give back all or part of a payment made with the card; never more than it took."""

    async def move(conn: AsyncConnection, program: ProgramContext) -> Operation:
        return await gift_card_service.refund(
            conn, program, code, now=clock.now(), **body.model_dump()
        )

    return await _card_movement(engine, principal, code, "refund", body, idempotency_key, move)


@router.get("/members/{member_id}/gift-cards", response_model=GiftCardPage)
async def member_gift_cards(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Limit = 50,
    cursor: str | None = None,
) -> GiftCardPage:
    """The gift cards given to the member, newest first."""
    before = pagination.decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> GiftCardPage:
        cards = await gift_card_service.member_cards(
            conn, program, member_id, limit=limit, before=before, now=clock.now()
        )
        last = cards[-1] if len(cards) == limit else None
        return GiftCardPage(
            items=[GiftCardOut.model_validate(c) for c in cards],
            next_cursor=pagination.encode_cursor(last["issued_at"], last["id"]) if last else None,
        )

    return await read_only(engine, principal, work)


# --- wallets ----------------------------------------------------------------------------------


@router.get("/members/{member_id}/wallet", response_model=WalletOut)
async def get_wallet(
    member_id: UUID, principal: Annotated[Principal, requires(P.MEMBERS_READ)], engine: EngineDep
) -> WalletOut:
    """The member's wallet: empty, with no id, until the first top-up opens it."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> WalletOut:
        return WalletOut.model_validate(
            await wallet_service.get(conn, program, member_id, clock.now())
        )

    return await read_only(engine, principal, work)


@router.get("/members/{member_id}/wallet/transactions", response_model=TransactionPage)
async def wallet_transactions(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Limit = 50,
    cursor: str | None = None,
) -> TransactionPage:
    """The wallet's movements, newest first."""
    before = pagination.decode_number_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> TransactionPage:
        items = await wallet_service.transactions(
            conn, program, member_id, limit=limit, before_seq=before
        )
        return _page(items, limit)

    return await read_only(engine, principal, work)


@router.post("/members/{member_id}/wallet/top-ups", status_code=201, response_model=OperationOut)
async def top_up_wallet(
    member_id: UUID,
    body: TopUpCreate,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Put money in the member's wallet; the first top-up opens it."""

    async def move(conn: AsyncConnection, program: ProgramContext) -> Operation:
        return await wallet_service.top_up(
            conn, program, member_id, now=clock.now(), **body.model_dump()
        )

    return await _wallet_movement(
        engine, principal, member_id, "top_up", body, idempotency_key, move
    )


@router.post("/members/{member_id}/wallet/payments", status_code=201, response_model=OperationOut)
async def pay_from_wallet(
    member_id: UUID,
    body: PaymentCreate,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Pay from the member's wallet; never beyond its balance."""

    async def move(conn: AsyncConnection, program: ProgramContext) -> Operation:
        return await wallet_service.pay(
            conn, program, member_id, now=clock.now(), **body.model_dump()
        )

    return await _wallet_movement(
        engine, principal, member_id, "payment", body, idempotency_key, move
    )


@router.post("/members/{member_id}/wallet/refunds", status_code=201, response_model=OperationOut)
async def refund_wallet_payment(
    member_id: UUID,
    body: RefundCreate,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Give back all or part of a payment from the wallet; never more than it took."""

    async def move(conn: AsyncConnection, program: ProgramContext) -> Operation:
        return await wallet_service.refund(
            conn, program, member_id, now=clock.now(), **body.model_dump()
        )

    return await _wallet_movement(
        engine, principal, member_id, "refund", body, idempotency_key, move
    )
