"""HTTP routes of members' benefits: the list, one benefit, a personal offer granted."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.benefits.schemas import BenefitGrant, BenefitItem, BenefitPage
from kopilka.benefits.service import benefit_service
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1", tags=["benefits"])


@router.get("/members/{member_id}/benefits", response_model=BenefitPage)
async def member_benefits(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    status: Literal["active", "used", "expired"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> BenefitPage:
    """The member's benefits and personal offers (from rules, journeys, staff), newest
    first, of ``status`` now if given; and what their tier gives."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> BenefitPage:
        return await benefit_service.page(
            conn, program, member_id, clock.now(), status=status, limit=limit, before=before
        )

    return await read_only(engine, principal, work)


@router.get("/benefits/{benefit_id}", response_model=BenefitItem)
async def get_benefit(
    benefit_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
) -> BenefitItem:
    async def work(conn: AsyncConnection, program: ProgramContext) -> BenefitItem:
        return await benefit_service.get(conn, program, benefit_id, clock.now())

    return await read_only(engine, principal, work)


@router.post("/members/{member_id}/benefits", response_model=BenefitItem, status_code=201)
async def grant_benefit(
    member_id: UUID,
    body: BenefitGrant,
    principal: Annotated[Principal, requires(P.POINTS_ADJUST)],
    engine: EngineDep,
) -> BenefitItem:
    """Give the member a personal offer (source ``staff``). The same ``grant_key`` again
    answers the first grant; with another kind or payload it is a 409."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> BenefitItem:
        return await benefit_service.grant(
            conn,
            program,
            member_id,
            kind=body.kind,
            payload=body.payload,
            source=("staff", body.grant_key),
            grant_key=body.grant_key,
            now=clock.now(),
            expires_at=body.expires_at,
            title=body.title,
        )

    return await in_transaction(engine, principal, work)
