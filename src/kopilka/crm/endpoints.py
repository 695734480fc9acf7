"""HTTP routes of crm: a member's facts."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.crm.schemas import MemberFacts
from kopilka.crm.service import crm_service
from kopilka.http import EngineDep, read_only, requires
from kopilka.kit.clock import clock

router = APIRouter(prefix="/v1", tags=["members"])


@router.get("/members/{member_id}/facts", response_model=MemberFacts)
async def member_facts(
    member_id: UUID, principal: Annotated[Principal, requires(P.MEMBERS_READ)], engine: EngineDep
) -> MemberFacts:
    """What the member's purchase history says of them: first and last purchase, counts and
    spend (lifetime and the last 12 months), returns, average check, favourite categories
    and stores, RFM scores (``docs/crm-facts.md``)."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: crm_service.facts(conn, program, member_id, clock.now()),
    )
