"""Who is using the console: the staff session in the ``kopilka_console`` cookie (the same
session as ``POST /v1/staff/sessions`` gives, checked on every page), admitted per page by a
permission of their role, as the API's routes are.

A page declares ``principal: Annotated[Principal, console_page(P.MEMBERS_READ)]``. Without a
session the browser is sent to the sign-in page; without the permission it gets a 403 page.
The page then runs its work through ``kopilka.http.in_transaction`` / ``read_only`` with
that principal, so audit entries and personal-data reads are logged as for the API.
"""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.access.domain import Permission, Principal
from kopilka.audit.domain import Actor, ActorKind, acting
from kopilka.db import read_with_retry
from kopilka.errors import Unauthorized
from kopilka.http import CONFIGURATION, admitted, read_only
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.staff.domain import SESSION_HOURS, SESSION_PREFIX
from kopilka.staff.service import staff_service
from kopilka.web.forms import form_of
from kopilka.web.rendering import render

CONSOLE_COOKIE = "kopilka_console"
COOKIE_PATH = "/console"
SESSION_SECONDS = SESSION_HOURS * 3600
SIGN_IN = "/console/sign-in"


class SignInNeeded(Unauthorized):
    """No live staff session: the page answers with a redirect to the sign-in page."""


async def console_principal(request: Request) -> Principal:
    """The signed-in staff member of this browser (``SignInNeeded`` otherwise)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    token = request.cookies.get(CONSOLE_COOKIE, "")
    if not token.startswith(SESSION_PREFIX):
        raise SignInNeeded("sign in to the console")
    engine: AsyncEngine = request.app.state.engine
    try:
        principal = await read_with_retry(
            engine, lambda conn: staff_service.principal(conn, token, clock.now())
        )
    except Unauthorized as exc:
        raise SignInNeeded(exc.detail) from None
    request.state.principal = principal
    return principal


def console_page(permission: Permission) -> Any:
    """``Depends`` admitting a signed-in staff member whose role holds ``permission``; a
    form sent to the page is CSRF-checked before the page runs."""

    async def dependency(request: Request) -> Principal:
        principal = await console_principal(request)
        admitted(principal, permission)
        acting.set(await _actor(request, principal, permission))
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]  # read by the tests
    return Depends(dependency)


async def any_staff(request: Request) -> Principal:
    """A signed-in staff member, whatever their role (their own account's pages)."""
    principal = await console_principal(request)
    acting.set(await _actor(request, principal, None))
    return principal


StaffUser = Annotated[Principal, Depends(any_staff)]


async def _actor(request: Request, principal: Principal, permission: Permission | None) -> Actor:
    """Who acts in this request, for the audit log: as for the API, a change of configuration
    keeps the fields sent (never the CSRF token), a change about a member only its route."""
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    subject = {k: str(v) for k, v in request.path_params.items()}
    body: Any = None
    if request.method not in ("GET", "HEAD"):
        form = await form_of(request)
        sent = {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
        if isinstance(sent.get("member_id"), str):
            subject.setdefault("member_id", sent["member_id"])
        body = sent if permission in CONFIGURATION else {"fields": sorted(sent)}
    else:
        subject.update({f"query.{k}": v for k, v in request.query_params.items()})
    return Actor(
        ActorKind.STAFF,
        principal.staff_id or principal.key_id,
        principal.name or "staff",
        route=f"{request.method} {template}",
        subject=subject,
        permission=str(permission or ""),
        body=body,
        audited=True,
    )


async def program_of(engine: AsyncEngine, principal: Principal) -> ProgramContext:
    """The staff member's program (a page that shows a form needs its settings and zone)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ProgramContext:
        return program

    return await read_only(engine, principal, work)


async def form_page(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    template: str,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    """A form of the program's (new or sent again with its errors), in the program's zone."""
    program = await program_of(engine, principal)
    return render(
        request,
        template,
        {"program": program, "values": values, "errors": errors},
        status=status,
        zone=program.settings.timezone,
    )
