"""App pages: support. The member's own tickets (their status and the last message), a new
one (a subject, the words, a store if it is about one), a ticket's conversation — the
member's words and the staff's public replies, never internal notes — and a reply.

The same services as ``/v1/members/{id}/tickets`` and its replies, always with the signed-in
member's id: another member's ticket is "not found", as one that does not exist.
"""

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.errors import Conflict, KopilkaError, NotFound
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.stores.schemas import Store
from kopilka.stores.service import store_service
from kopilka.support.member_tickets import member_ticket, member_tickets
from kopilka.support.schemas import MemberReplyCreate, MemberTicket, MemberTicketCreate
from kopilka.support.tickets import ticket_service
from kopilka.web.app.access import SignedInMember, app_url, member_read, member_transaction
from kopilka.web.forms import FormInvalid, field_errors, form_of, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/app", include_in_schema=False)

TICKETS_PER_PAGE = 20
STORE_CHOICES = 200  # stores the new-ticket form offers (a chain with more: the first ones)


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
    from the app; then its page."""
    form = await form_of(request)
    language = language_of(request)
    values = {name: _raw(form, name) for name in ("subject", "body", "store")}
    errors = _empty(values, ("subject", "body"), language)
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

        async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
            return await ticket_service.open_member_ticket(
                conn, program, member.member_id, data, clock.now()
            )

        ticket = await member_transaction(request, work)
    except KopilkaError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _new_ticket_page(request, member, values, field_errors(exc), status=422)
    notice = gettext(language, "Your request has been sent. We will answer here.")
    return redirect(request, app_url(member.slug, f"support/{ticket.id}"), notice)


# --- a ticket -----------------------------------------------------------------------------


def _ticket_page(
    request: Request,
    member: SignedInMember,
    ticket: MemberTicket,
    *,
    reply: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
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
    one takes none), as ``POST /v1/members/{id}/tickets/{ticket_id}/replies``."""
    found = ticket_id_of(ticket_id)
    form = await form_of(request)
    language = language_of(request)
    body = _raw(form, "body")
    try:
        errors = _empty({"body": body}, ("body",), language)
        if errors:
            raise FormInvalid(errors)
        data = validated(MemberReplyCreate, {"body": body})

        async def work(conn: AsyncConnection, program: ProgramContext) -> MemberTicket:
            return await ticket_service.member_reply(
                conn, program, member.member_id, found, data, clock.now()
            )

        await member_transaction(request, work)
    except KopilkaError as exc:
        if isinstance(exc, NotFound):
            raise
        if isinstance(exc, Conflict):
            exc = Conflict(gettext(language, "This request is closed: write a new one."))
        ticket = await _read_ticket(request, member, found)
        status = 409 if isinstance(exc, Conflict) else 422
        errors = {"body": exc.detail} if isinstance(exc, Conflict) else field_errors(exc)
        return _ticket_page(request, member, ticket, reply=body, errors=errors, status=status)
    notice = gettext(language, "Your reply has been sent.")
    return redirect(request, app_url(member.slug, f"support/{found}"), notice)
