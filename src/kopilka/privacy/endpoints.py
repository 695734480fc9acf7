"""HTTP routes of members' privacy requests: their data exported, their data erased."""

from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, FastJSONResponse, in_transaction, requires
from kopilka.kit.clock import clock
from kopilka.privacy.erasure import erasure_service
from kopilka.privacy.export import export_service
from kopilka.privacy.schemas import ErasureOut, ErasureRequest
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1/members", tags=["privacy"])


@router.get(
    "/{member_id}/export",
    response_class=FastJSONResponse,
    responses={200: {"content": {"application/json": {}}}},
)
async def export_member(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_EXPORT)],
    engine: EngineDep,
) -> JSONResponse:
    """Everything held about the member as one JSON document (GDPR art. 15 and 20): the
    profile, consents and their history, points and every movement, purchases with lines,
    tiers, coupons, rewards, gift cards, messages, interactions, tickets, survey answers,
    facts and segments. The export is in the audit log."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return await export_service.export_recorded(conn, program, member_id, clock.now())

    return FastJSONResponse(await in_transaction(engine, principal, work))


@router.post("/{member_id}/erase", response_model=ErasureOut)
async def erase_member(
    member_id: UUID,
    body: ErasureRequest,
    principal: Annotated[Principal, requires(P.MEMBERS_ERASE)],
    engine: EngineDep,
) -> ErasureOut:
    """Erase the member's personal data (GDPR art. 17): the profile's, every identifier
    (freed: nothing finds the member again), message texts and addresses, what support
    wrote of them; marketing consent withdrawn. Purchases, points and aggregates stay under
    an id that names no one, so the books still balance. Erasing again changes nothing."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ErasureOut:
        done = await erasure_service.erase(conn, program, member_id, body.reason, clock.now())
        return ErasureOut.model_validate(asdict(done))

    return await in_transaction(engine, principal, work)
