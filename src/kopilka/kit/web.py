"""FastAPI glue shared by every feature's endpoints: the engine, auth, transactions."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.apikeys.service import Principal, api_key_service
from kopilka.db import reading, run_in_transaction
from kopilka.errors import Forbidden, Unauthorized
from kopilka.programs.service import ProgramContext, program_service

T = TypeVar("T")
CONFLICT_RETRIES = 3


async def get_engine(request: Request) -> AsyncEngine:
    # async: a plain def dependency would be sent to a worker thread on every request
    engine: AsyncEngine = request.app.state.engine
    return engine


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


async def authenticate(
    engine: EngineDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("send 'Authorization: Bearer <api key>'")
    secret = authorization[7:].strip()
    # Most requests come with a key seen seconds ago: answer them without a connection.
    known = api_key_service.cached(secret)
    if known is not None:
        return known
    async with reading(engine) as conn:
        return await api_key_service.authenticate(conn, secret)


def scoped(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits keys with any of ``scopes`` (``admin`` is always admitted)."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(*scopes):
            raise Forbidden(f"this key needs one of the scopes: {', '.join(scopes)}")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(scoped("pos", "partner", "analyst"))]
Till = Annotated[Principal, Depends(scoped("pos", "partner"))]
Cashier = Annotated[Principal, Depends(scoped("pos"))]
Admin = Annotated[Principal, Depends(scoped("admin"))]


async def in_transaction(
    engine: AsyncEngine,
    principal: Principal,
    work: Callable[[AsyncConnection, ProgramContext], Awaitable[T]],
) -> T:
    """Run ``work`` with the caller's program in one committed transaction.

    A unique-constraint violation means a concurrent request wrote the same thing first
    (a retried purchase, a new member's identifier); running again sees what it wrote and
    answers from it.
    """

    async def attempt(conn: AsyncConnection) -> T:
        program = await program_service.get(conn, principal.program_id)
        return await work(conn, program)

    for tries in range(CONFLICT_RETRIES):
        try:
            return await run_in_transaction(engine, attempt)
        except IntegrityError:
            if tries == CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


async def read_only(
    engine: AsyncEngine,
    principal: Principal,
    work: Callable[[AsyncConnection, ProgramContext], Awaitable[T]],
) -> T:
    async with reading(engine) as conn:
        program = await program_service.get(conn, principal.program_id)
        return await work(conn, program)


def json_response(body: Any, status_code: int, *, replayed: bool = False) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(body, status_code=status_code, headers=headers)
