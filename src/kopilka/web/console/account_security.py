"""Console pages: the signed-in staff member's own security — changing their password
(every other session of theirs ends) and the authenticator app (TOTP): starting the
set-up (its secret and an ``otpauth://`` QR code), confirming it with a code, turning it
off with a code. The same service calls as ``/v1/staff/me/...``; any role may use them.
A wrong password or code here counts as a wrong sign-in does."""

from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.datastructures import FormData

from kopilka.access.domain import Principal
from kopilka.errors import KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.staff.domain import MIN_PASSWORD
from kopilka.staff.schemas import PasswordChange, StaffOut, TotpCode, TotpSetup
from kopilka.staff.service import staff_service
from kopilka.web.console.access import StaffUser
from kopilka.web.forms import field_errors, form_of, text, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
ACCOUNT = "/console/account"
TOTP_PAGE = "/console/account/totp"


def qr_code(uri: str) -> str:
    """The ``otpauth://`` URI as a QR code: an SVG in a ``data:`` URL (drawn here, no
    script; the page's policy allows ``data:`` images)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def grouped(secret: str) -> str:
    """The secret in groups of four, as people type it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- the password ---------------------------------------------------------------------------


def _password_page(
    request: Request, *, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "console/account/password.html",
        {"errors": errors or {}, "min_password": MIN_PASSWORD},
        status=status,
    )


@router.get("/account/password")
async def password_page(request: Request, principal: StaffUser) -> Response:
    """The form to change one's password."""
    return _password_page(request)


@router.post("/account/password")
async def change_password(request: Request, engine: EngineDep, principal: StaffUser) -> Response:
    """Change one's password: the current one, the new one twice. Every other session of
    the account ends; this one goes on. A wrong current password counts as a wrong sign-in
    (five in a row rest the account for 15 minutes)."""
    form = await form_of(request)
    language = language_of(request)
    fields = {
        name: value if isinstance(value := form.get(name), str) else ""
        for name in ("current_password", "new_password", "new_password_again")
    }
    if fields["new_password"] != fields["new_password_again"]:
        message = gettext(language, "The two new passwords differ.")
        return _password_page(request, errors={"new_password_again": message}, status=422)
    try:
        body = validated(
            PasswordChange,
            {
                "current_password": fields["current_password"],
                "new_password": fields["new_password"],
            },
        )
        refusal = await in_transaction(
            engine,
            principal,
            lambda conn, _: staff_service.change_password(conn, principal, body, clock.now()),
        )
        if refusal is not None:
            raise refusal  # after the commit: the wrong password is counted
    except KopilkaError as exc:
        if exc.status in (401, 403):
            raise
        return _password_page(request, errors=field_errors(exc), status=exc.status)
    notice = gettext(
        language, "The password has been changed; your other sessions have been ended."
    )
    return redirect(request, ACCOUNT, notice)


# --- the authenticator app ------------------------------------------------------------------


async def _totp_page(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async def work(conn: AsyncConnection, _: ProgramContext) -> tuple[StaffOut, TotpSetup | None]:
        return await staff_service.me(conn, principal), await staff_service.pending_totp(
            conn, principal
        )

    me, pending = await read_only(engine, principal, work)
    setup: dict[str, Any] | None = None
    if pending is not None:
        setup = {"secret": grouped(pending.secret), "uri": pending.uri, "qr": qr_code(pending.uri)}
    return render(
        request,
        "console/account/totp.html",
        {"me": me, "setup": setup, "errors": errors or {}},
        status=status,
    )


@router.get("/account/totp")
async def totp_page(request: Request, engine: EngineDep, principal: StaffUser) -> Response:
    """The authenticator app: on (a form to turn it off), being set up (the secret, its
    QR code and a form for the first code), or off (a button to set it up)."""
    return await _totp_page(request, engine, principal)


async def _refused(
    request: Request, engine: AsyncEngine, principal: Principal, exc: KopilkaError
) -> Response:
    if exc.status in (401, 403):
        raise exc
    return await _totp_page(request, engine, principal, errors=field_errors(exc), status=exc.status)


@router.post("/account/totp/start")
async def start_totp(request: Request, engine: EngineDep, principal: StaffUser) -> Response:
    """Start the set-up (again, with a new secret, if one was started): sign-in asks for
    codes only once a code confirms it."""
    try:
        await in_transaction(
            engine,
            principal,
            lambda conn, _: staff_service.start_totp(conn, principal, clock.now()),
        )
    except KopilkaError as exc:
        return await _refused(request, engine, principal, exc)
    return redirect(request, TOTP_PAGE)


def _code(form: FormData) -> TotpCode:
    return validated(TotpCode, {"code": text(form, "code", limit=20) or ""})


@router.post("/account/totp/confirm")
async def confirm_totp(request: Request, engine: EngineDep, principal: StaffUser) -> Response:
    """Turn the authenticator on with a code it shows now."""
    form = await form_of(request)
    try:
        code = _code(form)
        answer = await in_transaction(
            engine,
            principal,
            lambda conn, _: staff_service.confirm_totp(conn, principal, code.code, clock.now()),
        )
        if isinstance(answer, KopilkaError):
            raise answer  # after the commit: the wrong code is counted
    except KopilkaError as exc:
        return await _refused(request, engine, principal, exc)
    notice = gettext(
        language_of(request),
        "The authenticator app is on: signing in asks for its code from now on.",
    )
    return redirect(request, ACCOUNT, notice)


@router.post("/account/totp/disable")
async def disable_totp(request: Request, engine: EngineDep, principal: StaffUser) -> Response:
    """Turn the authenticator off with a code it shows now."""
    form = await form_of(request)
    try:
        code = _code(form)
        answer = await in_transaction(
            engine,
            principal,
            lambda conn, _: staff_service.disable_totp(conn, principal, code.code, clock.now()),
        )
        if isinstance(answer, KopilkaError):
            raise answer  # after the commit: the wrong code is counted
    except KopilkaError as exc:
        return await _refused(request, engine, principal, exc)
    notice = gettext(language_of(request), "The authenticator app is off.")
    return redirect(request, ACCOUNT, notice)
