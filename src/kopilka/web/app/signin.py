"""Signing in to the members' app without a password: the member types their phone or e-mail,
gets a six-digit code there (through messaging, by e-mail or SMS) and types it back; joining
the program from the app; signing out.

No page says whether an address belongs to a member: asking for a code, or joining with an
address already taken, answers with the same page (the code goes to whoever has the
address, if anyone), and every refused code gets the same message. Code requests and tries
are limited per address and per client address (429 beyond).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from limits import RateLimitItem, parse, storage, strategies
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.db import run_in_transaction
from kopilka.errors import InvalidInput, KopilkaError, TooManyRequests, Unauthorized
from kopilka.http import EngineDep
from kopilka.kit.clock import clock
from kopilka.memberaccess.domain import (
    CODE_MINUTES,
    Address,
    addresses_of,
    clean_code,
    parse_address,
)
from kopilka.memberaccess.service import member_access_service
from kopilka.members.schemas import MemberCreate
from kopilka.programs.service import ProgramContext
from kopilka.web.app.access import (
    APP_COOKIE,
    SESSION_SECONDS,
    SignedInMember,
    app_url,
    cookie_path,
    program_of,
    signed_in_member,
)
from kopilka.web.forms import choices, field_errors, flag, form_of, text, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render
from kopilka.web.security import local_path, set_cookie

router = APIRouter(prefix="/app", include_in_schema=False)

# How often codes may be asked for and tried. Per address: a member's inbox is not flooded
# and each new code (five tries) costs a request. Per client: one machine cannot walk
# through many addresses or guess many codes.
CODES_PER_ADDRESS = "5/hour"
CODES_PER_CLIENT = "30/hour"
TRIES_PER_CLIENT = "10/minute"
MARKETING_CHANNELS = ("email", "sms", "push")


class Window:
    """At most so many hits per key in a moving window, in this process."""

    def __init__(self, spec: str) -> None:
        self.item: RateLimitItem = parse(spec)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def allow(self, key: str) -> bool:
        return bool(self.limiter.hit(self.item, key))


@dataclass(frozen=True)
class SignInLimits:
    codes_per_address: Window
    codes_per_client: Window
    tries_per_client: Window


def limits_of(request: Request) -> SignInLimits:
    """The application's limits (made with it, on first use)."""
    found: SignInLimits | None = getattr(request.app.state, "app_sign_in_limits", None)
    if found is None:
        found = SignInLimits(
            Window(CODES_PER_ADDRESS), Window(CODES_PER_CLIENT), Window(TRIES_PER_CLIENT)
        )
        request.app.state.app_sign_in_limits = found
    return found


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _allow_codes(request: Request, program: ProgramContext, addresses: Sequence[Address]) -> None:
    """429 once this client, or one of these addresses, has asked for too many codes."""
    limits = limits_of(request)
    refused = not limits.codes_per_client.allow(f"{program.id}:{_client(request)}")
    for address in addresses:
        refused = not limits.codes_per_address.allow(f"{program.id}:{address.value}") or refused
    if refused:
        raise TooManyRequests(
            gettext(language_of(request), "Too many codes asked for: wait a while and try again.")
        )


def _context(program: ProgramContext, **values: Any) -> dict[str, Any]:
    return {"slug": program.slug, "program_name": program.name, **values}


def _target(slug: str, wanted: str | None) -> str:
    """Where to go once signed in: ``wanted`` if it is a page of this program's app."""
    home = app_url(slug)
    target = local_path(wanted, home)
    return target if target.startswith(cookie_path(slug)) else home


def _render(
    request: Request, template: str, program: ProgramContext, status: int = 200, **values: Any
) -> Response:
    return render(
        request,
        f"app/signin/{template}",
        _context(program, **values),
        status=status,
        zone=program.settings.timezone,
    )


async def _member_of(request: Request, slug: str) -> Any:
    """The member signed in to this app in this browser, or None."""
    try:
        return await signed_in_member(request, slug)
    except Unauthorized:
        return None


# --- asking for a code -------------------------------------------------------------------


@router.get("/{slug}/sign-in")
async def sign_in_page(request: Request, slug: str, next: str | None = None) -> Response:
    """The sign-in page: the member's phone or e-mail, to send a code to (a signed-in
    member goes on to the card)."""
    program = await program_of(request, slug)
    if await _member_of(request, slug) is not None:
        return redirect(request, _target(slug, next))
    return _render(request, "sign_in.html", program, next=next, address="", errors={})


@router.post("/{slug}/sign-in")
async def ask_for_code(request: Request, slug: str, engine: EngineDep) -> Response:
    """Send a code to the address typed, if a member has it; the answer is the code page
    either way."""
    form = await form_of(request)
    program = await program_of(request, slug)
    typed = text(form, "address", limit=320) or ""
    target = text(form, "next", limit=2000)
    try:
        address = parse_address(typed)
    except InvalidInput:
        error = gettext(language_of(request), "Enter your phone number or e-mail address.")
        return _render(
            request,
            "sign_in.html",
            program,
            status=422,
            next=target,
            address=typed,
            errors={"address": error},
        )
    _allow_codes(request, program, [address])
    await run_in_transaction(
        engine,
        lambda conn: member_access_service.request_code(conn, program, address, clock.now()),
    )
    return _code_page(request, program, [address], typed, target)


def _code_page(
    request: Request,
    program: ProgramContext,
    addresses: Sequence[Address],
    shown: str,
    target: str | None,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return _render(
        request,
        "code.html",
        program,
        status=status,
        addresses=[a.value for a in addresses],
        shown=shown,
        next=target,
        minutes=CODE_MINUTES,
        errors={"code": error} if error else {},
    )


# --- typing the code ---------------------------------------------------------------------


@router.post("/{slug}/sign-in/code")
async def enter_code(request: Request, slug: str, engine: EngineDep) -> Response:
    """The code typed: right, a session (the cookie) and on to the card (or ``next``);
    refused, the same page again with one message whatever the reason."""
    form = await form_of(request)
    program = await program_of(request, slug)
    language = language_of(request)
    target = text(form, "next", limit=2000)
    shown = text(form, "shown", limit=320) or ""
    addresses = _addresses(choices(form, "address"))
    if not addresses:
        return redirect(request, app_url(slug, "sign-in"))
    if not limits_of(request).tries_per_client.allow(f"{program.id}:{_client(request)}"):
        raise TooManyRequests(gettext(language, "Too many tries: wait a minute and try again."))
    code = clean_code(text(form, "code", limit=40) or "")
    if code is None:
        error = gettext(language, "The code is six digits.")
        return _code_page(request, program, addresses, shown, target, error=error, status=422)
    agent = request.headers.get("user-agent")

    async def work(conn: AsyncConnection) -> Any:
        return await member_access_service.sign_in(
            conn, program, addresses, code, clock.now(), user_agent=agent
        )

    signed = await run_in_transaction(engine, work)
    if signed.token is None:
        error = gettext(
            language, "This code is wrong or no longer valid. Check it, or ask for a new one."
        )
        return _code_page(request, program, addresses, shown, target, error=error, status=401)
    response = redirect(request, _target(slug, target))
    set_cookie(
        response,
        request,
        APP_COOKIE,
        signed.token,
        max_age=SESSION_SECONDS,
        path=cookie_path(slug),
    )
    return response


def _addresses(values: Sequence[str]) -> list[Address]:
    """The addresses a code page carries (its own hidden fields: at most two)."""
    found = []
    for value in values[:2]:
        try:
            found.append(parse_address(value))
        except InvalidInput:
            continue
    return found


# --- signing out -------------------------------------------------------------------------


@router.post("/{slug}/sign-out")
async def sign_out(
    request: Request, slug: str, engine: EngineDep, member: SignedInMember
) -> Response:
    """End this session (on the server, not only in this browser) and forget the cookie;
    the app's service worker empties its cache when it sees this answer."""
    await form_of(request)
    await run_in_transaction(
        engine,
        lambda conn: member_access_service.end_session(conn, member.session, clock.now()),
    )
    notice = gettext(language_of(request), "You are signed out.")
    response = redirect(request, app_url(slug, "sign-in"), notice)
    response.delete_cookie(APP_COOKIE, path=cookie_path(slug))
    return response


# --- joining -----------------------------------------------------------------------------

FRIENDLY = {
    "name": "Enter your name (at most 200 characters).",
    "phone": "Enter a valid phone number.",
    "email": "Enter a valid e-mail address.",
    "birthday": "Enter your birthday as a date.",
}


@router.get("/{slug}/sign-up")
async def sign_up_page(request: Request, slug: str) -> Response:
    """Joining the program: name, phone and/or e-mail, birthday, and the program's
    marketing consents, each unticked."""
    program = await program_of(request, slug)
    if await _member_of(request, slug) is not None:
        return redirect(request, app_url(slug))
    return _render(request, "sign_up.html", program, values={}, ticked=[], errors={})


@router.post("/{slug}/sign-up")
async def sign_up(request: Request, slug: str, engine: EngineDep) -> Response:
    """Register the member (as ``POST /v1/members`` does), record the consents ticked with
    the source ``app`` and send a code to confirm the address; an address already taken
    gets the same answer (the code goes to its member)."""
    form = await form_of(request)
    program = await program_of(request, slug)
    language = language_of(request)
    values = {name: text(form, name, limit=320) for name in ("name", "phone", "email", "birthday")}
    ticked = [c for c in MARKETING_CHANNELS if flag(form, f"marketing_{c}")]

    def again(errors: dict[str, str]) -> Response:
        return _render(
            request,
            "sign_up.html",
            program,
            status=422,
            values=values,
            ticked=ticked,
            errors=errors,
        )

    if not values["name"]:
        return again({"name": gettext(language, FRIENDLY["name"])})
    if not values["phone"] and not values["email"]:
        return again({"email": gettext(language, "Give a phone number or an e-mail address.")})
    try:
        data = validated(
            MemberCreate,
            {k: v for k, v in values.items() if v is not None} | {"language": language},
        )
        addresses = addresses_of(data.email, data.phone)
    except InvalidInput as exc:  # FormInvalid too
        return again(_friendly(language, field_errors(exc)))
    _allow_codes(request, program, addresses)

    async def work(conn: AsyncConnection) -> list[Address]:
        return await member_access_service.sign_up(conn, program, data, ticked, clock.now())

    try:
        sent_to = await run_in_transaction(engine, work)
    except KopilkaError as exc:
        return again(_friendly(language, field_errors(exc)))
    shown = " · ".join(v for v in (values["email"], values["phone"]) if v)
    return _code_page(request, program, sent_to, shown, None)


def _friendly(language: str, errors: dict[str, str]) -> dict[str, str]:
    """The messages of the form's own fields in the page's language (others as given)."""
    return {
        field: gettext(language, FRIENDLY[field]) if field in FRIENDLY else message
        for field, message in errors.items()
    }
