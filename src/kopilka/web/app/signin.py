"""Signing in to the members' app without a password: the member types their phone or e-mail,
gets a six-digit code there (through messaging, by e-mail or SMS) and types it back; joining
the program from the app; signing out.

No page says whether an address belongs to a member: asking for a code, or joining with an
address already taken, answers with the same page (the code goes to whoever has the
address, if anyone), and every refused code gets the same message. Code requests and tries
are limited per address and per client address (429 beyond, saying truthfully when to try
again). A code is asked for only on a channel the server sends on: without an SMS provider
a phone number is answered "sign in with your e-mail" (and the other way round), whoever's
number it is.
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from limits import RateLimitItem, parse, storage, strategies
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.config import Settings
from kopilka.db import run_in_transaction
from kopilka.errors import InvalidInput, KopilkaError, Unauthorized
from kopilka.http import EngineDep
from kopilka.kit.clock import clock
from kopilka.memberaccess.domain import (
    CODE_MINUTES,
    Address,
    ChannelUnavailable,
    CodeChannel,
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
from kopilka.web.i18n import language_of, translations
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

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may hit again: when its oldest hit leaves the window."""
        stats = self.limiter.get_window_stats(self.item, key)
        return 0.0 if stats.remaining > 0 else max(stats.reset_time - time.time(), 0.0)


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


def code_channels(settings: Settings) -> frozenset[CodeChannel]:
    """The channels this server can send a code on: e-mail with an SMTP server or a mail
    folder, SMS with a provider."""
    found = set()
    if settings.smtp_host or settings.mail_outbox_dir:
        found.add(CodeChannel.EMAIL)
    if settings.sms_provider is not None:
        found.add(CodeChannel.SMS)
    return frozenset(found)


def channels_of(request: Request) -> frozenset[CodeChannel]:
    return code_channels(request.app.state.settings)


def unavailable_text(language: str, channel: CodeChannel) -> str:
    """Why no code can go to an address of this kind (said of the kind, never of whose)."""
    if channel is CodeChannel.SMS:
        return gettext(language, "Sign-in by SMS is not available: use your e-mail address.")
    return gettext(language, "Sign-in by e-mail is not available: use your phone number.")


@dataclass(frozen=True)
class Refusal:
    """A request over a limit: what to tell the person, and ``Retry-After``."""

    text: str
    seconds: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.seconds)}


def _minutes(seconds: float) -> int:
    """The whole minutes of a wait, at least one (as said to a person)."""
    return max(1, math.ceil(seconds / 60))


def _seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def allow_codes(
    request: Request, program: ProgramContext, addresses: Sequence[Address]
) -> Refusal | None:
    """None if a code may be sent; once this client, or one of these addresses, has asked
    for too many, when that limit lets the next one through (the longest wait of those
    reached: an address's limit lasts an hour)."""
    limits = limits_of(request)
    waits = []
    client = f"{program.id}:{_client(request)}"
    if not limits.codes_per_client.allow(client):
        waits.append(limits.codes_per_client.wait(client))
    for address in addresses:
        key = f"{program.id}:{address.value}"
        if not limits.codes_per_address.allow(key):
            waits.append(limits.codes_per_address.wait(key))
    if not waits:
        return None
    wait = max(waits)
    said = translations(language_of(request)).ngettext(
        "Too many codes asked for: try again in %(num)s minute.",
        "Too many codes asked for: try again in %(num)s minutes.",
        _minutes(wait),
    )
    return Refusal(said % {"num": _minutes(wait)}, _seconds(wait))


def _context(program: ProgramContext, **values: Any) -> dict[str, Any]:
    return {"slug": program.slug, "program_name": program.name, **values}


def _target(slug: str, wanted: str | None) -> str:
    """Where to go once signed in: ``wanted`` if it is a page of this program's app."""
    home = app_url(slug)
    target = local_path(wanted, home)
    return target if target.startswith(cookie_path(slug)) else home


def _render(
    request: Request,
    template: str,
    program: ProgramContext,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    return render(
        request,
        f"app/signin/{template}",
        _context(program, **values),
        status=status,
        zone=program.settings.timezone,
        headers=headers,
    )


async def _member_of(request: Request, slug: str) -> Any:
    """The member signed in to this app in this browser, or None."""
    try:
        return await signed_in_member(request, slug)
    except Unauthorized:
        return None


def tries_refusal(request: Request, program: ProgramContext) -> Refusal | None:
    """None if this client may type a code now; else when it may again."""
    tries, client = limits_of(request).tries_per_client, f"{program.id}:{_client(request)}"
    if tries.allow(client):
        return None
    wait = tries.wait(client)
    said = translations(language_of(request)).ngettext(
        "Too many tries: try again in %(num)s minute.",
        "Too many tries: try again in %(num)s minutes.",
        _minutes(wait),
    )
    return Refusal(said % {"num": _minutes(wait)}, _seconds(wait))


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
    language = language_of(request)

    def again(error: str, status: int, headers: dict[str, str] | None = None) -> Response:
        return _render(
            request,
            "sign_in.html",
            program,
            status=status,
            headers=headers,
            next=target,
            address=typed,
            errors={"address": error},
        )

    try:
        address = parse_address(typed)
    except InvalidInput:
        return again(gettext(language, "Enter your phone number or e-mail address."), 422)
    channels = channels_of(request)
    if address.channel not in channels:
        return again(unavailable_text(language, address.channel), 422)
    refusal = allow_codes(request, program, [address])
    if refusal is not None:
        return again(refusal.text, 429, refusal.headers)
    await run_in_transaction(
        engine,
        lambda conn: member_access_service.request_code(
            conn, program, address, clock.now(), channels=channels
        ),
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
    headers: dict[str, str] | None = None,
    left_out: str | None = None,
) -> Response:
    return _render(
        request,
        "code.html",
        program,
        status=status,
        headers=headers,
        addresses=[a.value for a in addresses],
        shown=shown,
        next=target,
        minutes=CODE_MINUTES,
        errors={"code": error} if error else {},
        left_out=left_out,
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
    refusal = tries_refusal(request, program)
    if refusal is not None:
        return _code_page(
            request,
            program,
            addresses,
            shown,
            target,
            error=refusal.text,
            status=429,
            headers=refusal.headers,
        )
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
    """Register the member (as ``POST /v1/members`` does) with the address a code is sent
    to, to confirm it (the e-mail if both are given: the phone is not added — the page says
    it can be, from the profile, by a code sent to it); the consents ticked for that
    address's channel are granted (source ``app``) when that code is entered. An address
    already taken gets the same answer (the code goes to its member)."""
    form = await form_of(request)
    program = await program_of(request, slug)
    language = language_of(request)
    values = {name: text(form, name, limit=320) for name in ("name", "phone", "email", "birthday")}
    ticked = [c for c in MARKETING_CHANNELS if flag(form, f"marketing_{c}")]

    def again(
        errors: dict[str, str], status: int = 422, headers: dict[str, str] | None = None
    ) -> Response:
        return _render(
            request,
            "sign_up.html",
            program,
            status=status,
            headers=headers,
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
    channels = channels_of(request)
    if not any(a.channel in channels for a in addresses):
        first = addresses[0]
        return again({first.kind: unavailable_text(language, first.channel)})
    refusal = allow_codes(request, program, addresses)
    if refusal is not None:
        return again({"form": refusal.text}, 429, refusal.headers)

    async def work(conn: AsyncConnection) -> list[Address]:
        return await member_access_service.sign_up(
            conn, program, data, ticked, clock.now(), channels=channels
        )

    try:
        sent_to = await run_in_transaction(engine, work)
    except ChannelUnavailable as exc:
        field = exc.field or "email"
        return again({field: unavailable_text(language, exc.channel)})
    except KopilkaError as exc:
        return again(_friendly(language, field_errors(exc)))
    # The page depends on what was typed alone (the code's address is the e-mail if it can
    # be sent to): it tells no one whether an address is a member's.
    [confirmed] = sent_to
    shown = values[confirmed.kind] or confirmed.value
    left = [a for a in addresses if a != confirmed]
    other = values[left[0].kind] if left else None
    return _code_page(request, program, sent_to, shown, None, left_out=other)


def _friendly(language: str, errors: dict[str, str]) -> dict[str, str]:
    """The messages of the form's own fields in the page's language (others as given)."""
    return {
        field: gettext(language, FRIENDLY[field]) if field in FRIENDLY else message
        for field, message in errors.items()
    }
