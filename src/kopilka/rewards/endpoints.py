"""HTTP routes of the rewards shop: the catalog, redemptions, code pools."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import (
    EngineDep,
    in_transaction,
    json_response,
    read_only,
    requires,
)
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.rewards.redemptions import redemption_service
from kopilka.rewards.schemas import (
    CancelRequest,
    CodesAdd,
    CodesAdded,
    FulfilRequest,
    RedemptionCreate,
    RedemptionPage,
    Reward,
    RewardCreate,
    RewardPage,
    RewardRedemption,
    RewardUpdate,
)
from kopilka.rewards.service import reward_service

router = APIRouter(prefix="/v1", tags=["rewards"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.post("/rewards", status_code=201, response_model=Reward)
async def create_reward(
    body: RewardCreate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> Reward:
    """Add a reward to the shop."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Reward:
        return await reward_service.create(conn, program, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.get("/rewards", response_model=RewardPage)
async def list_rewards(
    principal: Annotated[Principal, requires(P.PROGRAM_READ)],
    engine: EngineDep,
    member_id: Annotated[
        UUID | None,
        Query(description="Only what this member can see, at their price, with can_redeem."),
    ] = None,
    affordable: Annotated[
        bool, Query(description="With member_id: only what the member can pay for now.")
    ] = False,
    category: str | None = None,
    status: Annotated[str | None, Query(pattern="^(active|archived)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> RewardPage:
    """The catalog in key order; for a member, what is on offer to them."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> RewardPage:
        return await reward_service.catalog(
            conn,
            program,
            member_id=member_id,
            affordable=affordable,
            category=category,
            status=status,
            limit=limit,
            cursor=cursor,
            now=clock.now(),
        )

    return await read_only(engine, principal, work)


@router.get("/rewards/{key}", response_model=Reward)
async def get_reward(
    key: str,
    principal: Annotated[Principal, requires(P.PROGRAM_READ)],
    engine: EngineDep,
    member_id: UUID | None = None,
) -> Reward:
    """A reward; with ``member_id`` also the member's price and whether they can take it."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Reward:
        return await reward_service.get(conn, program, key, member_id, clock.now())

    return await read_only(engine, principal, work)


@router.patch("/rewards/{key}", response_model=Reward)
async def update_reward(
    key: str,
    body: RewardUpdate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> Reward:
    """Change a reward; ``{"status": "archived"}`` takes it off the shop."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Reward:
        return await reward_service.update(conn, program, key, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.post("/rewards/{key}/codes", status_code=201, response_model=CodesAdded)
async def add_reward_codes(
    key: str,
    body: CodesAdd,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> CodesAdded:
    """Add codes to a digital reward's pool; codes it already has are skipped."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> CodesAdded:
        return await reward_service.add_codes(conn, program, key, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.post("/rewards/{key}/redemptions", status_code=201, response_model=RewardRedemption)
async def redeem_reward(
    key: str,
    body: RedemptionCreate,
    principal: Annotated[Principal, requires(P.SALES_RECORD)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Spend the member's points on a reward. Balance, tier, stock and limits are checked
    in one transaction; a digital, coupon or gift-certificate reward hands out its code."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await redemption_service.redeem(
            conn, program, key, body, idempotency_key, clock.now()
        )

    status_code, result, replayed = await in_transaction(engine, principal, work)
    return json_response(result, status_code, replayed=replayed)


@router.get("/members/{member_id}/reward-redemptions", response_model=RedemptionPage)
async def member_reward_redemptions(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> RedemptionPage:
    """The member's reward redemptions, newest first."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> RedemptionPage:
        return await redemption_service.history(
            conn, program, member_id, limit=limit, before=before
        )

    return await read_only(engine, principal, work)


@router.get("/reward-redemptions/{redemption_id}", response_model=RewardRedemption)
async def get_reward_redemption(
    redemption_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
) -> RewardRedemption:
    async def work(conn: AsyncConnection, program: ProgramContext) -> RewardRedemption:
        return await redemption_service.get(conn, program, redemption_id)

    return await read_only(engine, principal, work)


@router.post("/reward-redemptions/{redemption_id}/fulfil", response_model=RewardRedemption)
async def fulfil_reward_redemption(
    redemption_id: UUID,
    principal: Annotated[Principal, requires(P.REWARDS_FULFIL)],
    engine: EngineDep,
    body: FulfilRequest | None = None,
) -> RewardRedemption:
    """Mark an issued redemption (a parcel, an invitation, a donation) handed over."""
    note = body.note if body else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> RewardRedemption:
        return await redemption_service.fulfil(conn, program, redemption_id, note, clock.now())

    return await in_transaction(engine, principal, work)


@router.post("/reward-redemptions/{redemption_id}/cancel", response_model=RewardRedemption)
async def cancel_reward_redemption(
    redemption_id: UUID,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    body: CancelRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Cancel an issued redemption: the points go back to the member and a counted stock
    gets its item back. A fulfilled redemption cannot be cancelled (409)."""
    request = body or CancelRequest()

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await redemption_service.cancel_once(
            conn, program, redemption_id, request, idempotency_key, clock.now()
        )

    status_code, result, replayed = await in_transaction(engine, principal, work)
    return json_response(result, status_code, replayed=replayed)
