"""Signing in to the console and out of it, and the console's front door."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from kopilka.access.domain import Principal
from kopilka.db import run_in_transaction
from kopilka.errors import InvalidInput, TooManyRequests, Unauthorized
from kopilka.http import EngineDep, read_only
from kopilka.kit.clock import clock
from kopilka.staff.schemas import SignIn
from kopilka.staff.service import staff_service
from kopilka.web.console.access import (
    CONSOLE_COOKIE,
    COOKIE_PATH,
    SESSION_SECONDS,
    SignInNeeded,
    StaffUser,
    any_staff,
    console_principal,
)
from kopilka.web.console.navigation import SECTIONS, console_nav
from kopilka.web.forms import form_of, text
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render
from kopilka.web.security import local_path, set_cookie

router = APIRouter(prefix="/console", include_in_schema=False)


def _home_of(principal: Principal) -> str:
    sections = console_nav(principal)
    return sections[0].href if sections else "/console/account"


@router.get("")
async def console_root() -> Response:
    return redirect_plain("/console/")


def redirect_plain(target: str) -> Response:
    return Response(status_code=307, headers={"Location": target})


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    try:
        principal = await console_principal(request)
    except SignInNeeded:
        return render(request, "console/sign_in.html", {"next": next, "email": "", "error": None})
    return redirect(request, local_path(next, _home_of(principal)))


@router.post("/sign-in")
async def sign_in(request: Request, engine: EngineDep) -> Response:
    form = await form_of(request)
    language = language_of(request)
    email = text(form, "email", limit=320) or ""
    target = text(form, "next", limit=2000)
    context = {"next": target, "email": email}
    client = request.client.host if request.client else "unknown"
    if not request.app.state.sign_in_limit.allow(client):
        raise TooManyRequests("too many sign-in attempts from this address: wait a minute")
    try:
        data = SignIn(
            email=email,
            password=(form.get("password") or "") if isinstance(form.get("password"), str) else "",
            totp=text(form, "totp", limit=10),
        )
    except ValidationError:
        error = gettext(language, "Wrong e-mail, password or code.")
        return render(request, "console/sign_in.html", {**context, "error": error}, status=401)
    agent = request.headers.get("user-agent")
    try:
        answer = await run_in_transaction(
            engine, lambda conn: staff_service.sign_in(conn, data, clock.now(), user_agent=agent)
        )
    except InvalidInput as several:  # the same e-mail and password in several programs
        return render(
            request, "console/sign_in.html", {**context, "error": several.detail}, status=422
        )
    if isinstance(answer, Unauthorized):
        message = (
            gettext(language, "This account needs the code from the authenticator app.")
            if "totp" in answer.detail
            else gettext(language, "Wrong e-mail, password or code.")
        )
        return render(request, "console/sign_in.html", {**context, "error": message}, status=401)
    allowed = set(answer.staff.permissions)
    home = next((s.href for s in SECTIONS if s.permission in allowed), "/console/account")
    response = redirect(request, local_path(target, home))
    set_cookie(
        response, request, CONSOLE_COOKIE, answer.token, max_age=SESSION_SECONDS, path=COOKIE_PATH
    )
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, engine: EngineDep, principal: Annotated[Principal, Depends(any_staff)]
) -> Response:
    await run_in_transaction(
        engine, lambda conn: staff_service.sign_out(conn, principal, clock.now())
    )
    response = redirect(request, "/console/sign-in")
    response.delete_cookie(CONSOLE_COOKIE, path=COOKIE_PATH)
    return response


@router.get("/account")
async def account(request: Request, engine: EngineDep, principal: StaffUser) -> Response:
    """The signed-in staff member's own account: who they are and what their role allows."""
    me = await read_only(engine, principal, lambda conn, _: staff_service.me(conn, principal))
    return render(request, "console/account.html", {"me": me})
