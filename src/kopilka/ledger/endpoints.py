"""HTTP routes of balances, history, redemptions and adjustments."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import (
    EngineDep,
    in_transaction,
    json_response,
    read_only,
    requires,
)
from kopilka.idempotency.service import idempotency_store
from kopilka.kit.clock import as_utc, clock
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.ledger.adjustments import adjust_once, balance_out
from kopilka.ledger.domain import MEMBER_ACCOUNTS, Balance
from kopilka.ledger.redemptions import points_redemption_service, redemption_dict
from kopilka.ledger.schemas import (
    AdjustmentCreate,
    AdjustmentOut,
    BalanceResponse,
    CaptureRequest,
    ChangeOut,
    EntryOut,
    ExpiringOut,
    HistoryPage,
    RedemptionCreate,
    RedemptionOut,
)
from kopilka.ledger.service import ledger_service
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.tiers.schemas import MemberTierOut
from kopilka.tiers.service import tier_service

router = APIRouter(prefix="/v1", tags=["ledger"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


_balance_out = balance_out


@router.get("/members/{member_id}/balance", response_model=BalanceResponse)
async def get_balance(
    member_id: UUID, principal: Annotated[Principal, requires(P.MEMBERS_READ)], engine: EngineDep
) -> BalanceResponse:
    async def work(conn: AsyncConnection, program: ProgramContext) -> BalanceResponse:
        member = await member_service.get(conn, program, member_id)
        balances = await ledger_service.balances(conn, program, member_id)
        expiring = await ledger_service.next_expiring(conn, member_id)
        progress = None
        if program.settings.tiers is not None:
            found = await tier_service.member_tier(conn, program, member_id, clock.now())
            progress = MemberTierOut.model_validate(found)
        return BalanceResponse(
            member_id=member_id,
            status=member.status,
            balances=[
                _balance_out(c, balances.get(c, Balance()))
                for c in program.settings.currency_codes()
            ],
            next_expiring=[ExpiringOut(currency=c, amount=a, expires_at=e) for c, a, e in expiring],
            tier=progress.tier.id if progress else None,
            tier_progress=progress,
        )

    return await read_only(engine, principal, work)


@router.get("/members/{member_id}/history", response_model=HistoryPage)
async def get_history(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> HistoryPage:
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> HistoryPage:
        await member_service.get(conn, program, member_id)
        rows = await ledger_service.history(conn, member_id, limit=limit, before=before)
        items = [
            EntryOut(
                id=e.id,
                kind=e.kind,
                reason=e.reason,
                reference_type=e.reference_type,
                reference_id=e.reference_id,
                occurred_at=as_utc(e.occurred_at),
                created_at=as_utc(e.created_at),
                changes=[
                    ChangeOut(
                        currency=p.currency, account=p.account, amount=p.amount, rule_id=p.rule_id
                    )
                    for p in postings
                    if p.account in MEMBER_ACCOUNTS
                ],
            )
            for e, postings in rows
        ]
        next_cursor = (
            encode_cursor(rows[-1][0].created_at, rows[-1][0].id) if len(rows) == limit else None
        )
        return HistoryPage(items=items, next_cursor=next_cursor)

    return await read_only(engine, principal, work)


def _redemption_out(row: dict[str, Any], balance: Balance) -> dict[str, Any]:
    data = redemption_dict(row)
    data["balance"] = _balance_out(data["currency"], balance)
    return RedemptionOut.model_validate(data).model_dump(mode="json")


@router.post("/redemptions", status_code=201, response_model=RedemptionOut)
async def create_redemption(
    body: RedemptionCreate,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    # The till's own id for the redemption is the natural key; the header serves callers
    # that have none.
    key = f"redemption:{body.external_id}" if body.external_id else idempotency_key

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        member_id, _ = await member_service.resolve(conn, program, body.member)

        async def lock() -> None:
            await ledger_service.lock(conn, program, [member_id], clock.now())

        async def operation() -> dict[str, Any]:
            await lock()
            # Read under the lock: a block that committed first is seen.
            _, status = await member_service.resolve(conn, program, MemberRef(id=member_id))
            view = await points_redemption_service.redeem(
                conn,
                program,
                member_id=member_id,
                member_status=status,
                currency=body.currency,
                amount=body.amount,
                mode=body.mode,
                now=clock.now(),
                reason=body.reason,
                external_id=body.external_id,
            )
            return _redemption_out(view.row, view.balance)

        return await idempotency_store.run_once(
            conn, program.id, key, body, operation, lock, external_id=body.external_id
        )

    status_code, result, replayed = await in_transaction(engine, principal, work)
    return json_response(result, status_code, replayed=replayed)


async def _settle(
    redemption_id: UUID,
    principal: Principal,
    engine: AsyncEngine,
    key: str | None,
    body: BaseModel,
    outcome: str,
    amount: int | None,
) -> JSONResponse:
    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        async def operation() -> dict[str, Any]:
            member_id = await points_redemption_service.lock_redemption_member(
                conn, program, redemption_id, clock.now()
            )
            _, status = await member_service.resolve(conn, program, MemberRef(id=member_id))
            view = await points_redemption_service.settle_hold(
                conn,
                program,
                redemption_id,
                capture_amount=amount,
                now=clock.now(),
                outcome=outcome,
                member_status=status,
            )
            return _redemption_out(view.row, view.balance)

        async def lock() -> None:
            await points_redemption_service.lock_redemption_member(
                conn, program, redemption_id, clock.now()
            )

        scoped_key = f"{outcome}:{redemption_id}:{key}" if key else None
        return await idempotency_store.run_once(
            conn, program.id, scoped_key, body, operation, lock, 200
        )

    status_code, result, replayed = await in_transaction(engine, principal, work)
    return json_response(result, status_code, replayed=replayed)


@router.post("/redemptions/{redemption_id}/capture", response_model=RedemptionOut)
async def capture_redemption(
    redemption_id: UUID,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    body: CaptureRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    body = body or CaptureRequest()
    return await _settle(
        redemption_id, principal, engine, idempotency_key, body, "captured", body.amount
    )


@router.post("/redemptions/{redemption_id}/void", response_model=RedemptionOut)
async def void_redemption(
    redemption_id: UUID,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _settle(
        redemption_id, principal, engine, idempotency_key, CaptureRequest(), "voided", None
    )


@router.post("/adjustments", status_code=201, response_model=AdjustmentOut)
async def create_adjustment(
    body: AdjustmentCreate,
    principal: Annotated[Principal, requires(P.POINTS_ADJUST)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await adjust_once(conn, program, body, idempotency_key)

    status_code, result, replayed = await in_transaction(engine, principal, work)
    return json_response(result, status_code, replayed=replayed)
