"""HTTP route of activities: events other than purchases."""

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.activities.schemas import ActivityCreate, ActivityResult
from kopilka.activities.service import activity_service
from kopilka.http import EngineDep, in_transaction, json_response, requires
from kopilka.kit.clock import clock
from kopilka.members.schemas import Member, MemberCreate
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1")


@router.post("/events", status_code=201, response_model=ActivityResult, tags=["events"])
async def record_activity(
    body: ActivityCreate,
    principal: Annotated[Principal, requires(P.SALES_RECORD)],
    engine: EngineDep,
    explain: bool = False,
) -> JSONResponse:
    """Record a sign-up, completed profile, review, birthday or custom event; the rules with
    that trigger run on it. Idempotent by ``external_id``."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[int, Any, bool]:
        return await activity_service.record(conn, program, body, clock.now(), explain=explain)

    status_code, result, replayed = await in_transaction(engine, principal, work)
    return json_response(result, status_code, replayed=replayed)


@router.post("/members", status_code=201, response_model=Member, tags=["members"])
async def register_member(
    body: MemberCreate,
    principal: Annotated[Principal, requires(P.MEMBERS_REGISTER)],
    engine: EngineDep,
) -> Member:
    """Register a member; the program's sign-up rules run in the same transaction, as of
    `registered_at` when it is given. (Registration is the sign-up activity: its route lives
    with the activities, which run on the member it creates.)"""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: activity_service.sign_up(conn, program, body, clock.now()),
    )
