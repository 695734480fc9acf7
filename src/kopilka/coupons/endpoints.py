"""HTTP routes of coupons: campaigns, codes, QR codes and validation at the till."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.coupons.schemas import (
    Campaign,
    CampaignCreate,
    CampaignUpdate,
    CodeOut,
    CodePage,
    CodesCreate,
    CodesCreated,
    CodeUpdate,
    ValidateRequest,
    ValidateResult,
)
from kopilka.coupons.service import coupon_service
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.codes import qr_svg
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1", tags=["coupons"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post("/coupon-campaigns", status_code=201, response_model=Campaign)
async def create_campaign(
    body: CampaignCreate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> Campaign:
    async def work(conn: AsyncConnection, program: ProgramContext) -> Campaign:
        found = await coupon_service.create_campaign(conn, program, body, clock.now())
        return Campaign.model_validate(found)

    return await in_transaction(engine, principal, work)


@router.get("/coupon-campaigns", response_model=list[Campaign])
async def list_campaigns(
    principal: Annotated[Principal, requires(P.PROGRAM_READ)], engine: EngineDep
) -> list[Campaign]:
    async def work(conn: AsyncConnection, program: ProgramContext) -> list[Campaign]:
        found = await coupon_service.campaigns(conn, program)
        return [Campaign.model_validate(c) for c in found]

    return await read_only(engine, principal, work)


@router.get("/coupon-campaigns/{key}", response_model=Campaign)
async def get_campaign(
    key: str, principal: Annotated[Principal, requires(P.PROGRAM_READ)], engine: EngineDep
) -> Campaign:
    async def work(conn: AsyncConnection, program: ProgramContext) -> Campaign:
        return Campaign.model_validate(await coupon_service.campaign(conn, program, key))

    return await read_only(engine, principal, work)


@router.patch("/coupon-campaigns/{key}", response_model=Campaign)
async def update_campaign(
    key: str,
    body: CampaignUpdate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> Campaign:
    async def work(conn: AsyncConnection, program: ProgramContext) -> Campaign:
        found = await coupon_service.update_campaign(conn, program, key, body, clock.now())
        return Campaign.model_validate(found)

    return await in_transaction(engine, principal, work)


@router.post("/coupon-campaigns/{key}/codes", status_code=201, response_model=CodesCreated)
async def create_codes(
    key: str,
    body: CodesCreate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> CodesCreated:
    """Generate ``count`` unique codes from a pattern, or import ``codes``; optionally one
    member per code (personal codes). All or nothing."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> CodesCreated:
        found = await coupon_service.add_codes(conn, program, key, body, clock.now())
        return CodesCreated.model_validate(found)

    return await in_transaction(engine, principal, work)


@router.get("/coupon-campaigns/{key}/codes", response_model=CodePage)
async def list_codes(
    key: str,
    principal: Annotated[Principal, requires(P.PROGRAM_READ)],
    engine: EngineDep,
    limit: Limit = 100,
    cursor: str | None = None,
) -> CodePage:
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> CodePage:
        found = await coupon_service.codes_page(
            conn, program, campaign_key=key, limit=limit, after=after
        )
        return _page(found, limit)

    return await read_only(engine, principal, work)


@router.get("/members/{member_id}/coupons", response_model=CodePage)
async def member_coupons(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Limit = 100,
    cursor: str | None = None,
) -> CodePage:
    """The member's personal codes, oldest first."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> CodePage:
        await member_service.get(conn, program, member_id)
        found = await coupon_service.codes_page(
            conn, program, member_id=member_id, limit=limit, after=after
        )
        return _page(found, limit)

    return await read_only(engine, principal, work)


def _page(found: list[dict[str, object]], limit: int) -> CodePage:
    items = [CodeOut.model_validate(c) for c in found]
    next_cursor = encode_cursor(items[-1].issued_at, items[-1].id) if len(items) == limit else None
    return CodePage(items=items, next_cursor=next_cursor)


@router.get("/coupons/{code}", response_model=CodeOut)
async def get_code(
    code: str, principal: Annotated[Principal, requires(P.PROGRAM_READ)], engine: EngineDep
) -> CodeOut:
    async def work(conn: AsyncConnection, program: ProgramContext) -> CodeOut:
        return CodeOut.model_validate(await coupon_service.code_out(conn, program, code))

    return await read_only(engine, principal, work)


@router.patch("/coupons/{code}", response_model=CodeOut)
async def update_code(
    code: str,
    body: CodeUpdate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> CodeOut:
    """Disable a code (lost, leaked) or enable it again."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> CodeOut:
        found = await coupon_service.set_code_status(conn, program, code, body.status)
        return CodeOut.model_validate(found)

    return await in_transaction(engine, principal, work)


@router.get(
    "/coupons/{code}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def code_qr(
    code: str, principal: Annotated[Principal, requires(P.PROGRAM_READ)], engine: EngineDep
) -> Response:
    """The code as a QR code (SVG) for the member app and the till's scanner."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> str:
        row = await coupon_service.code(conn, program, code)
        return str(row.code)

    text = await read_only(engine, principal, work)
    return Response(
        qr_svg(text),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=86400"},
    )


@router.post("/coupons/validate", response_model=ValidateResult)
async def validate(
    body: ValidateRequest,
    principal: Annotated[Principal, requires(P.SALES_RECORD)],
    engine: EngineDep,
) -> ValidateResult:
    """Whether the codes can be used on this basket now and what they take off. Changes
    nothing: the purchase that carries the codes redeems them."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ValidateResult:
        found = await coupon_service.validate(conn, program, body, clock.now())
        return ValidateResult.model_validate(found)

    return await read_only(engine, principal, work)
