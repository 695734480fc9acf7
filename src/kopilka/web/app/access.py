"""Who is using the app: the member session in the program's ``kopilka_app`` cookie (path
``/app/<slug>/``, so each program's app has its own), checked on every page.

A page declares ``member: SignedInMember`` and gets the program and the member's id; the
work runs through ``member_transaction`` / ``member_read``, which load nothing but what the
page asks for — every service call a page makes names ``member.member_id``, so a member
sees only their own data. Without a session the browser is sent to the sign-in page.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import read_with_retry, run_in_transaction
from kopilka.errors import Unauthorized
from kopilka.kit.clock import clock
from kopilka.memberaccess.domain import SESSION_DAYS, MemberSession
from kopilka.memberaccess.service import member_access_service
from kopilka.programs.service import ProgramContext, program_service

T = TypeVar("T")
APP_COOKIE = "kopilka_app"
SESSION_SECONDS = SESSION_DAYS * 24 * 3600


def cookie_path(slug: str) -> str:
    return f"/app/{slug}/"


def app_url(slug: str, page: str = "") -> str:
    return f"/app/{slug}/{page}"


@dataclass(frozen=True)
class MemberCaller:
    """A signed-in member and their program."""

    session: MemberSession
    program: ProgramContext

    @property
    def member_id(self) -> UUID:
        return self.session.member_id

    @property
    def slug(self) -> str:
        return self.program.slug


async def program_of(request: Request, slug: str) -> ProgramContext:
    """The program whose app this is (404 if there is none by that name)."""
    engine: AsyncEngine = request.app.state.engine
    program = await read_with_retry(engine, lambda conn: program_service.get_by_slug(conn, slug))
    request.state.program = program
    return program


async def signed_in_member(request: Request, slug: str) -> MemberCaller:
    """The member signed in to this program's app (401 → the sign-in page otherwise)."""
    program = await program_of(request, slug)
    token = request.cookies.get(APP_COOKIE, "")
    engine: AsyncEngine = request.app.state.engine
    session = await read_with_retry(
        engine, lambda conn: member_access_service.session(conn, token, clock.now())
    )
    if session.program_id != program.id:
        raise Unauthorized("sign in to this program's app")
    caller = MemberCaller(session, program)
    request.state.member = caller
    return caller


async def optional_member(request: Request, slug: str) -> MemberCaller | None:
    """The signed-in member on a page open to visitors too (the stores, the rules), or None."""
    try:
        return await signed_in_member(request, slug)
    except Unauthorized:
        return None


SignedInMember = Annotated[MemberCaller, Depends(signed_in_member)]


async def member_transaction(
    request: Request, work: Callable[[AsyncConnection, ProgramContext], Awaitable[T]]
) -> T:
    """Run ``work`` in one committed transaction, with the program as stored now."""
    engine: AsyncEngine = request.app.state.engine
    program_id = request.state.member.program.id

    async def attempt(conn: AsyncConnection) -> T:
        return await work(conn, await program_service.get(conn, program_id))

    return await run_in_transaction(engine, attempt)


async def member_read(
    request: Request, work: Callable[[AsyncConnection, ProgramContext], Awaitable[T]]
) -> T:
    """Run ``work`` on a reading connection."""
    engine: AsyncEngine = request.app.state.engine
    program: ProgramContext = request.state.member.program
    return await read_with_retry(engine, lambda conn: work(conn, program))
