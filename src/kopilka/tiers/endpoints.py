"""HTTP routes of tiers: a member's tier and progress, manual tiers."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.tiers.schemas import ManualTierCreate, MemberTierOut
from kopilka.tiers.service import tier_service

router = APIRouter(prefix="/v1", tags=["tiers"])


@router.get("/members/{member_id}/tier", response_model=MemberTierOut)
async def get_member_tier(
    member_id: UUID, principal: Annotated[Principal, requires(P.MEMBERS_READ)], engine: EngineDep
) -> MemberTierOut:
    """The member's tier and benefits, what counts toward the next tier and how much more is
    needed, what the next review would do, and the history of changes."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberTierOut:
        found = await tier_service.member_tier(conn, program, member_id, clock.now())
        return MemberTierOut.model_validate(found)

    return await read_only(engine, principal, work)


@router.post("/members/{member_id}/tier/manual", response_model=MemberTierOut)
async def assign_manual_tier(
    member_id: UUID,
    body: ManualTierCreate,
    principal: Annotated[Principal, requires(P.TIERS_MANUAL)],
    engine: EngineDep,
) -> MemberTierOut:
    """Give a member a tier by hand (an invitation-only tier, a goodwill gesture): it is a
    floor until ``until``, then the member has the tier they earned. Assigning again
    replaces the manual tier; the same body twice changes nothing the second time."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberTierOut:
        found = await tier_service.assign_manual(
            conn, program, member_id, body.tier, body.reason, body.until, clock.now()
        )
        return MemberTierOut.model_validate(found)

    return await in_transaction(engine, principal, work)


@router.delete("/members/{member_id}/tier/manual", response_model=MemberTierOut)
async def end_manual_tier(
    member_id: UUID, principal: Annotated[Principal, requires(P.TIERS_MANUAL)], engine: EngineDep
) -> MemberTierOut:
    """End the member's manual tier now."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberTierOut:
        found = await tier_service.end_manual(conn, program, member_id, clock.now())
        return MemberTierOut.model_validate(found)

    return await in_transaction(engine, principal, work)
