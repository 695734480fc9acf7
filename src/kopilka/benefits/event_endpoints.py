"""HTTP routes of program events: staff define them and see who accepted; a member's
invitations, accepted or declined."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.benefits.event_schemas import (
    GuestPage,
    MemberEvent,
    MemberEventList,
    ProgramEvent,
    ProgramEventCreate,
    ProgramEventPage,
    ProgramEventUpdate,
)
from kopilka.benefits.event_service import program_event_service
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1", tags=["program events"])
Limit = Annotated[int, Query(ge=1, le=200)]


@router.post("/program-events", status_code=201, response_model=ProgramEvent)
async def create_program_event(
    body: ProgramEventCreate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> ProgramEvent:
    """Add an event members are invited to (409 if the key is taken)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ProgramEvent:
        return await program_event_service.create(conn, program, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.get("/program-events", response_model=ProgramEventPage)
async def list_program_events(
    principal: Annotated[Principal, requires(P.PROGRAM_READ)],
    engine: EngineDep,
    status: Literal["scheduled", "cancelled"] | None = None,
    upcoming: Annotated[
        bool, Query(description="Only events not over (not ended, or not started).")
    ] = False,
    limit: Limit = 50,
    cursor: str | None = None,
) -> ProgramEventPage:
    """The program's events, soonest first."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> ProgramEventPage:
        return await program_event_service.page(
            conn, program, clock.now(), status=status, upcoming=upcoming, limit=limit, after=after
        )

    return await read_only(engine, principal, work)


@router.get("/program-events/{key}", response_model=ProgramEvent)
async def get_program_event(
    key: str,
    principal: Annotated[Principal, requires(P.PROGRAM_READ)],
    engine: EngineDep,
) -> ProgramEvent:
    async def work(conn: AsyncConnection, program: ProgramContext) -> ProgramEvent:
        return await program_event_service.get(conn, program, key)

    return await read_only(engine, principal, work)


@router.patch("/program-events/{key}", response_model=ProgramEvent)
async def update_program_event(
    key: str,
    body: ProgramEventUpdate,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> ProgramEvent:
    """Change a scheduled event; a field sent as null is cleared."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ProgramEvent:
        return await program_event_service.update(conn, program, key, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.post("/program-events/{key}/cancel", response_model=ProgramEvent)
async def cancel_program_event(
    key: str,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> ProgramEvent:
    """Cancel the event for good; cancelling again changes nothing."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ProgramEvent:
        return await program_event_service.cancel(conn, program, key, clock.now())

    return await in_transaction(engine, principal, work)


@router.get("/program-events/{key}/guests", response_model=GuestPage)
async def program_event_guests(
    key: str,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Limit = 50,
    cursor: str | None = None,
) -> GuestPage:
    """Members who accepted, in the order they accepted."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> GuestPage:
        return await program_event_service.guests(conn, program, key, limit=limit, after=after)

    return await read_only(engine, principal, work)


@router.get("/members/{member_id}/events", response_model=MemberEventList)
async def member_events(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
) -> MemberEventList:
    """Events not over that the member's tier is invited to (or that they accepted), with
    their answer."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberEventList:
        return await program_event_service.member_events(conn, program, member_id, clock.now())

    return await read_only(engine, principal, work)


@router.post("/members/{member_id}/events/{key}/accept", response_model=MemberEvent)
async def accept_program_event(
    member_id: UUID,
    key: str,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> MemberEvent:
    """The member takes a place (403 not invited; 409 cancelled, started or full).
    Accepting again changes nothing."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberEvent:
        return await program_event_service.accept(conn, program, member_id, key, clock.now())

    return await in_transaction(engine, principal, work)


@router.post("/members/{member_id}/events/{key}/decline", response_model=MemberEvent)
async def decline_program_event(
    member_id: UUID,
    key: str,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> MemberEvent:
    """The member will not come; a place they had taken is free again. Declining again
    changes nothing."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberEvent:
        return await program_event_service.decline(conn, program, member_id, key, clock.now())

    return await in_transaction(engine, principal, work)
