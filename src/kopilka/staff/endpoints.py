"""HTTP routes of staff: sign in and out, one's own account, and managing the team."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.db import run_in_transaction
from kopilka.errors import KopilkaError, TooManyRequests, Unauthorized
from kopilka.http import EngineDep, StaffCaller, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, next_cursor
from kopilka.programs.service import ProgramContext
from kopilka.staff.schemas import (
    PasswordChange,
    SessionOut,
    SignIn,
    StaffCreate,
    StaffOut,
    StaffPage,
    StaffUpdate,
    TotpCode,
    TotpSetup,
)
from kopilka.staff.service import staff_service

router = APIRouter(prefix="/v1/staff", tags=["staff"])


@router.post("/sessions", status_code=201, response_model=SessionOut)
async def sign_in(body: SignIn, request: Request, engine: EngineDep) -> SessionOut:
    """Sign in with e-mail and password (and the authenticator's code once enabled): the
    answer's token is the session, sent as ``Authorization: Bearer ks_…``; it lasts 12
    hours. Any wrong answer is the same 401; five wrong passwords in a row rest the
    account for 15 minutes; more than ``KOPILKA_SIGN_IN_PER_MINUTE`` (20) attempts a minute
    from one address are a 429."""
    client = request.client.host if request.client else "unknown"
    if not request.app.state.sign_in_limit.allow(client):
        raise TooManyRequests("too many sign-in attempts from this address: wait a minute")
    agent = request.headers.get("user-agent")
    answer = await run_in_transaction(
        engine, lambda conn: staff_service.sign_in(conn, body, clock.now(), user_agent=agent)
    )
    if isinstance(answer, Unauthorized):
        raise answer  # after the commit: the wrong password is counted
    return answer


@router.delete("/sessions/current", status_code=204, response_class=Response)
async def sign_out(principal: StaffCaller, engine: EngineDep) -> Response:
    """End this session."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        await staff_service.sign_out(conn, principal, clock.now())

    await in_transaction(engine, principal, work)
    return Response(status_code=204)


@router.get("/me", response_model=StaffOut)
async def me(principal: StaffCaller, engine: EngineDep) -> StaffOut:
    """The signed-in staff member, with the permissions of their role."""
    return await read_only(engine, principal, lambda conn, _: staff_service.me(conn, principal))


@router.post("/me/password", status_code=204, response_class=Response)
async def change_password(
    body: PasswordChange, principal: StaffCaller, engine: EngineDep
) -> Response:
    """A new password (12 characters or more); every other session of the account ends.
    A wrong current password counts as a wrong sign-in: five in a row rest the account for
    15 minutes (then a 429)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> KopilkaError | None:
        return await staff_service.change_password(conn, principal, body, clock.now())

    refusal = await in_transaction(engine, principal, work)
    if refusal is not None:
        raise refusal  # after the commit: the wrong password is counted
    return Response(status_code=204)


@router.post("/me/totp", response_model=TotpSetup)
async def start_totp(principal: StaffCaller, engine: EngineDep) -> TotpSetup:
    """Start the authenticator's set-up: a secret and its ``otpauth://`` URI; sign-in asks
    for codes once one is confirmed."""
    return await in_transaction(
        engine, principal, lambda conn, _: staff_service.start_totp(conn, principal, clock.now())
    )


@router.post("/me/totp/confirm", response_model=StaffOut)
async def confirm_totp(body: TotpCode, principal: StaffCaller, engine: EngineDep) -> StaffOut:
    """Turn the authenticator on with a code it shows now; a wrong code counts as a wrong
    sign-in."""
    answer = await in_transaction(
        engine,
        principal,
        lambda conn, _: staff_service.confirm_totp(conn, principal, body.code, clock.now()),
    )
    if isinstance(answer, KopilkaError):
        raise answer  # after the commit: the wrong code is counted
    return answer


@router.post("/me/totp/disable", response_model=StaffOut)
async def disable_totp(body: TotpCode, principal: StaffCaller, engine: EngineDep) -> StaffOut:
    """Turn the authenticator off with a code it shows now; a wrong code counts as a wrong
    sign-in."""
    answer = await in_transaction(
        engine,
        principal,
        lambda conn, _: staff_service.disable_totp(conn, principal, body.code, clock.now()),
    )
    if isinstance(answer, KopilkaError):
        raise answer  # after the commit: the wrong code is counted
    return answer


@router.post("", status_code=201, response_model=StaffOut)
async def create_staff(
    body: StaffCreate,
    principal: Annotated[Principal, requires(P.STAFF_MANAGE)],
    engine: EngineDep,
) -> StaffOut:
    """A new staff account with a role (and optionally some stores only)."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: staff_service.create(conn, program.id, body, clock.now()),
    )


@router.get("", response_model=StaffPage)
async def list_staff(
    principal: Annotated[Principal, requires(P.STAFF_MANAGE)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> StaffPage:
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> StaffPage:
        items = await staff_service.page(conn, program.id, limit=limit, after=after)
        return StaffPage(items=items, next_cursor=next_cursor(items, limit))

    return await read_only(engine, principal, work)


@router.get("/{staff_id}", response_model=StaffOut)
async def get_staff(
    staff_id: UUID, principal: Annotated[Principal, requires(P.STAFF_MANAGE)], engine: EngineDep
) -> StaffOut:
    return await read_only(
        engine, principal, lambda conn, program: staff_service.get(conn, program.id, staff_id)
    )


@router.patch("/{staff_id}", response_model=StaffOut)
async def update_staff(
    staff_id: UUID,
    body: StaffUpdate,
    principal: Annotated[Principal, requires(P.STAFF_MANAGE)],
    engine: EngineDep,
) -> StaffOut:
    """Change the name, role, stores or status; ``disabled`` ends every session at once.
    Nobody disables their own account, and the last active owner is neither demoted nor
    disabled (409)."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: staff_service.update(
            conn, program.id, staff_id, body, clock.now(), by=principal.staff_id
        ),
    )


@router.post("/{staff_id}/sessions/end", response_model=dict[str, int])
async def end_sessions(
    staff_id: UUID, principal: Annotated[Principal, requires(P.STAFF_MANAGE)], engine: EngineDep
) -> dict[str, int]:
    """Sign a staff member out everywhere (a lost phone or laptop)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, int]:
        return {"ended": await staff_service.end_sessions(conn, program.id, staff_id, clock.now())}

    return await in_transaction(engine, principal, work)
