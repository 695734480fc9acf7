"""App pages: support. The member's own tickets (their status and the last message), a new
one (a subject, the words, a store if it is about one), a ticket's conversation — the
member's words and the staff's public replies, never internal notes — and a reply.

The same services as ``/v1/members/{id}/tickets`` and its replies, always with the signed-in
member's id: another member's ticket is "not found", as one that does not exist.

The new-ticket and reply forms carry a one-time key: sent twice (a double tap, a reload), the
request or reply is written once and the second sending answers as the first.
"""

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.errors import Conflict, IdempotencyConflict, InvalidInput, KopilkaError, NotFound
from kopilka.idempotency.service import idempotency_store
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.stores.schemas import Store
from kopilka.stores.service import store_service
from kopilka.support.member_tickets import (
    lock_member_requests,
    lock_member_ticket,
    member_ticket,
    member_tickets,
)
from kopilka.support.schemas import MemberReplyCreate, MemberTicket, MemberTicketCreate
from kopilka.support.tickets import ticket_service
from kopilka.web.app.access import SignedInMember, app_url, member_read, member_transaction
from kopilka.web.forms import FormInvalid, field_errors, form_of, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/app", include_in_schema=False)
T = TypeVar("T")

TICKETS_PER_PAGE = 20
STORE_CHOICES = 200  # stores the new-ticket form offers (a chain with more: the first ones)
# What ``new_form_key`` makes: a form sending anything else was not made by these pages.
FORM_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def ticket_id_of(raw: str) -> UUID:
    """A ticket's id from the path; anything else is a ticket that does not exist."""
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"ticket {raw!r} not found", field="ticket_id") from None


def _raw(form: FormData, name: str) -> str:
    """A text field as typed, stripped (its length is the schema's to check)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _empty(values: dict[str, str], names: tuple[str, ...], language: str) -> dict[str, str]:
    """The required fields left empty, each with its message."""
    message = gettext(language, "Please fill this in.")
    return {name: message for name in names if not values.get(name)}


def new_form_key() -> str:
    """A one-time key for one showing of a form."""
    return secrets.token_urlsafe(24)


def _form_key(form: FormData, language: str) -> str:
    """The form's one-time key; without a well-formed one, a refusal above the form."""
    key = form.get("form_key")
    if not isinstance(key, str) or not FORM_KEY.fullmatch(key):
        message = gettext(
            language, "This form is incomplete: open it again and send it from there."
        )
        raise InvalidInput(message, field="form")
    return key


def _resent(language: str) -> str:
    """What a form says when its key was used already with other words: the first sending
    was sent; the form shown again gets a new key."""
    return gettext(
        language,
        "This form was sent already with other words, and those were sent. "
        "To send these as well, send the form again.",
    )


def _key_again(form: FormData) -> str:
    """The key for a form shown again after a refusal: the one it was sent with (nothing
    was done under it), or a new one if it had none."""
    key = form.get("form_key")
    return key if isinstance(key, str) and FORM_KEY.fullmatch(key) else new_form_key()


async def _once(
    request: Request, work: Callable[[AsyncConnection, ProgramContext], Awaitable[T]]
) -> T:
    """``work`` in one transaction; once more if its one-time key's answer was stored by a
    copy of the same form sent at the same moment (the second run finds that answer)."""
    try:
        return await member_transaction(request, work)
    except IntegrityError:
        return await member_transaction(request, work)


async def _locked() -> None:
    return None  # the work took its lock before asking for the key's answer


# --- the list -----------------------------------------------------------------------------


@router.get("/{slug}/support")
async def support_page(
    request: Request, member: SignedInMember, cursor: str | None = None
) -> Response:
    """The member's tickets, newest first, each with its status and last message."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await member_tickets(
            conn, program, member.member_id, before=before, limit=TICKETS_PER_PAGE
        )

    page = await member_read(request, work)
    next_url = (
        app_url(member.slug, f"support?cursor={page.next_cursor}") if page.next_cursor else None
    )
    return render(
        request,
        "app/support/index.html",
        {
            "slug": member.slug,
            "program_name": member.program.name,
            "tickets": page.items,
            "next_url": next_url,
        },
        zone=member.program.settings.timezone,
    )


# --- a new ticket -------------------------------------------------------------------------


async def _new_ticket_page(
    request: Request,
    member: SignedInMember,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    form_key: str | None = None,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> list[Store]:
        page = await store_service.by_place(conn, program, clock.now(), limit=STORE_CHOICES)
        chosen = values.get("store")
        if chosen and all(s.code != chosen for s in page.items):
            found = await store_service.find(conn, program, chosen)
            return [*page.items, found] if found is not None else page.items
        return page.items

    stores = await member_read(request, work)
    return render(
        request,
        "app/support/new.html",
        {
            "slug": member.slug,
            "program_name": member.program.name,
            "values": values,
            "errors": errors,
            "form_key": form_key or new_form_key(),
            "store_options": [(s.code, _store_label(s)) for s in stores],
        },
        status=status,
        zone=member.program.settings.timezone,
    )


def _store_label(store: Store) -> str:
    return f"{store.name}, {store.address}" if store.address else store.name


@router.get("/{slug}/support/new")
async def new_ticket_page(
    request: Request, member: SignedInMember, store: str | None = None
) -> Response:
    """The form of a new request to support (``store``: the store it is about, chosen)."""
    values = {"subject": "", "body": "", "store": (store or "")[:100]}
    return await _new_ticket_page(request, member, values, {})


@router.post("/{slug}/support/new")
async def open_ticket(request: Request, member: SignedInMember) -> Response:
    """Send a new request: the member's own ticket, as ``POST /v1/members/{id}/tickets``
    from the app; then its page. Sent again with the same one-time key: the same ticket."""
    form = await form_of(request)
    language = language_of(request)
    values = {name: _raw(form, name) for name in ("subject", "body", "store")}
    errors = _empty(values, ("subject", "body"), language)
    key_again: str | None = _key_again(form)
    try:
        if errors:
            raise FormInvalid(errors)
        data = validated(
            MemberTicketCreate,
            {
                "subject": values["subject"],
                "body": values["body"],
                "store": values["store"] or None,
                "channel": "app",
            },
        )
        once = f"app-support:new:{member.member_id}:{_form_key(form, language)}"

        async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
            await lock_member_requests(conn, program, member.member_id)

            async def operation() -> dict[str, Any]:
                ticket = await ticket_service.open_member_ticket(
                    conn, program, member.member_id, data, clock.now()
                )
                return {"id": str(ticket.id)}

            return await idempotency_store.run_once(
                conn, program.id, once, data, operation, _locked
            )

        _, ticket, _ = await _once(request, work)
    except KopilkaError as exc:
        if isinstance(exc, NotFound):
            raise
        status = 422
        errors = field_errors(exc)
        if isinstance(exc, IdempotencyConflict):
            # Sent before with other words, and sent then: the form gets a new key.
            errors, status, key_again = {"form": _resent(language)}, 409, None
        return await _new_ticket_page(
            request, member, values, errors, status=status, form_key=key_again
        )
    notice = gettext(language, "Your request has been sent. We will answer here.")
    return redirect(request, app_url(member.slug, f"support/{ticket['id']}"), notice)


# --- a ticket -----------------------------------------------------------------------------


def _ticket_page(
    request: Request,
    member: SignedInMember,
    ticket: MemberTicket,
    *,
    reply: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
    form_key: str | None = None,
) -> Response:
    return render(
        request,
        "app/support/ticket.html",
        {
            "slug": member.slug,
            "program_name": member.program.name,
            "ticket": ticket,
            "reply": reply,
            "errors": errors or {},
            "form_key": form_key or new_form_key(),
        },
        status=status,
        zone=member.program.settings.timezone,
    )


async def _read_ticket(request: Request, member: SignedInMember, ticket_id: UUID) -> MemberTicket:
    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberTicket:
        return await member_ticket(conn, program, member.member_id, ticket_id)

    return await member_read(request, work)


@router.get("/{slug}/support/{ticket_id}")
async def ticket_page(request: Request, member: SignedInMember, ticket_id: str) -> Response:
    """One of the member's tickets: the conversation (public messages only) and a reply
    form while it is not closed."""
    ticket = await _read_ticket(request, member, ticket_id_of(ticket_id))
    return _ticket_page(request, member, ticket)


@router.post("/{slug}/support/{ticket_id}")
async def reply_to_ticket(request: Request, member: SignedInMember, ticket_id: str) -> Response:
    """The member's reply on their ticket (a waiting or resolved ticket reopens; a closed
    one takes none), as ``POST /v1/members/{id}/tickets/{ticket_id}/replies``. Sent again
    with the same one-time key: written once, answered as the first."""
    found = ticket_id_of(ticket_id)
    form = await form_of(request)
    language = language_of(request)
    body = _raw(form, "body")
    key_again: str | None = _key_again(form)
    try:
        errors = _empty({"body": body}, ("body",), language)
        if errors:
            raise FormInvalid(errors)
        data = validated(MemberReplyCreate, {"body": body})

        async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
            # First the ticket (another member's is "not found"), then the form's key.
            await lock_member_ticket(conn, program, member.member_id, found)
            once = f"app-support:reply:{member.member_id}:{found}:{_form_key(form, language)}"

            async def operation() -> dict[str, Any]:
                await ticket_service.member_reply(
                    conn, program, member.member_id, found, data, clock.now()
                )
                return {"ticket_id": str(found)}

            return await idempotency_store.run_once(
                conn, program.id, once, data, operation, _locked
            )

        await _once(request, work)
    except KopilkaError as exc:
        if isinstance(exc, NotFound):
            raise
        if isinstance(exc, IdempotencyConflict):
            # Sent before with other words, and sent then: the form gets a new key.
            errors, key_again = {"form": _resent(language)}, None
        elif isinstance(exc, Conflict):
            errors = {"body": gettext(language, "This request is closed: write a new one.")}
        else:
            errors = field_errors(exc)
        ticket = await _read_ticket(request, member, found)
        status = 409 if isinstance(exc, Conflict) else 422
        return _ticket_page(
            request, member, ticket, reply=body, errors=errors, status=status, form_key=key_again
        )
    notice = gettext(language, "Your reply has been sent.")
    return redirect(request, app_url(member.slug, f"support/{found}"), notice)
