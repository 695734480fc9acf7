"""Console pages: the tickets inbox and a ticket's page (its conversation, the member, its
SLA deadlines), with the actions of ``/v1/tickets``: reply to the member, an internal
note, assign, change status, priority or category, close.

A staff member limited to some stores sees and changes only their stores' tickets: the
ticket service filters the inbox and answers "not found" for another store's ticket.

The reply and note forms carry a one-time key: sent twice (a double click, a reload), the
member gets one reply and the ticket one note.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.audit.service import audit_service
from kopilka.errors import IdempotencyConflict, InvalidInput, KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.idempotency.service import idempotency_store
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.staff.schemas import StaffRef
from kopilka.staff.service import staff_service
from kopilka.support.domain import TRANSITIONS, QueueOrder, TicketStatus
from kopilka.support.schemas import NoteCreate, ReplyCreate, Ticket, TicketPage, TicketUpdate
from kopilka.support.tickets import ticket_service
from kopilka.web.console.access import console_page
from kopilka.web.console.members import form_key, form_key_again, new_form_key, sent_before
from kopilka.web.forms import field_errors, form_of, text, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
Handler = Annotated[Principal, console_page(P.TICKETS_HANDLE)]
D = TypeVar("D")
PAGE_SIZE = 50
# Where a ticket may come from (``TicketCreate`` and ``MemberTicketCreate`` channels).
CHANNELS = ("app", "pos", "web", "email", "phone", "chat", "staff", "api")
StatusFilter = Literal["active", "all", "new", "open", "waiting", "resolved", "closed"]
AssigneeFilter = Literal["all", "me", "unassigned"]


@dataclass(frozen=True)
class Inbox:
    """What the inbox was asked for (the filters of its form)."""

    status: StatusFilter = "active"
    assignee: AssigneeFilter = "all"
    channel: str | None = None
    store: str | None = None
    overdue: bool = False
    order: QueueOrder = QueueOrder.DEADLINE

    def statuses(self) -> list[TicketStatus] | None:
        if self.status == "active":
            return None  # the service's default: new, open, waiting
        if self.status == "all":
            return list(TicketStatus)
        return [TicketStatus(self.status)]


def next_url(request: Request, cursor: str | None) -> str | None:
    """This page's address with the next page's cursor (its filters kept)."""
    if cursor is None:
        return None
    url = request.url.include_query_params(cursor=cursor)
    return f"{url.path}?{url.query}"


@router.get("/tickets")
async def inbox(
    request: Request,
    engine: EngineDep,
    principal: Handler,
    status: StatusFilter = "active",
    assignee: AssigneeFilter = "all",
    channel: Annotated[str | None, Query(max_length=10)] = None,
    store: Annotated[str | None, Query(max_length=100)] = None,
    overdue: bool = False,
    order: QueueOrder = QueueOrder.DEADLINE,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The tickets inbox: filtered by status, assignee (me, unassigned, all), channel,
    store and overdue (past an SLA deadline), the nearest deadline or the newest or oldest
    first, a page at a time."""
    asked = Inbox(status, assignee, channel or None, store or None, overdue, order)
    after = decode_cursor(cursor) if cursor else None

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[TicketPage, list[StaffRef], str]:
        page = await ticket_service.queue(
            conn,
            program,
            principal,
            clock.now(),
            status=asked.statuses(),
            assignee_id=principal.staff_id if asked.assignee == "me" else None,
            unassigned=asked.assignee == "unassigned",
            store=asked.store,
            breached=asked.overdue,
            channel=asked.channel,
            order=asked.order,
            after=after,
            limit=PAGE_SIZE,
        )
        handlers = await staff_service.ticket_handlers(conn, program.id)
        return page, handlers, program.settings.timezone

    page, handlers, zone = await read_only(engine, principal, work)
    return render(
        request,
        "console/tickets/index.html",
        {
            "tickets": page.items,
            "asked": asked,
            "names": {h.id: h.name for h in handlers},
            "channels": CHANNELS,
            "next_url": next_url(request, page.next_cursor),
        },
        zone=zone,
    )


# --- a ticket -------------------------------------------------------------------------------


async def _ticket_page(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    ticket_id: UUID,
    *,
    errors: dict[str, str] | None = None,
    sent: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        ticket = await ticket_service.ticket(conn, program, principal, ticket_id, clock.now())
        member = await member_service.get(conn, program, ticket.member_id)
        settings = await ticket_service.settings(conn, program)
        handlers = await staff_service.ticket_handlers(conn, program.id)
        return {
            "ticket": ticket,
            "member": member,
            "categories": settings.categories,
            "handlers": handlers,
            "zone": program.settings.timezone,
        }

    found = await read_only(engine, principal, work)
    zone = found.pop("zone")
    ticket: Ticket = found["ticket"]
    names = {h.id: h.name for h in found["handlers"]}
    sent = sent or {}
    # A new key for each form shown; the refused form's own again (nothing was done).
    keys = {
        action: form_key_again(sent.get("idempotency_key"))
        if sent.get("action") == action
        else new_form_key()
        for action in ("reply", "note")
    }
    return render(
        request,
        "console/tickets/ticket.html",
        {
            **found,
            "names": names,
            "moves": _moves(ticket),
            "errors": errors or {},
            "sent": sent,
            "keys": keys,
        },
        status=status,
        zone=zone,
    )


def _moves(ticket: Ticket) -> list[str]:
    """The statuses the ticket may move to now (the workflow's table)."""
    return [str(s) for s in TRANSITIONS[TicketStatus(ticket.status)]]


@router.get("/tickets/{ticket_id}")
async def ticket_page(
    request: Request, ticket_id: UUID, engine: EngineDep, principal: Handler
) -> Response:
    """A ticket: the conversation (internal notes marked), the member, its SLA deadlines,
    and the forms to answer and move it."""
    return await _ticket_page(request, engine, principal, ticket_id)


async def _change(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    ticket_id: UUID,
    build: Callable[[FormData], D],
    act: Callable[[AsyncConnection, ProgramContext, D], Awaitable[object]],
    done: str,
    action: str,
) -> Response:
    """Run one change of a ticket: ``build(form)`` makes the service's input (or raises
    ``FormInvalid``), ``act(conn, program, data)`` does it, and ``done`` (translated) is
    the notice; a refusal re-renders the ticket
    with the message beside the field of the form ``action`` names, changing nothing."""
    form = await form_of(request)
    sent = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    sent["action"] = action
    try:
        data = build(form)
        await in_transaction(engine, principal, lambda conn, program: act(conn, program, data))
    except KopilkaError as exc:
        if exc.status in (401, 403, 404):
            raise
        errors = field_errors(exc)
        if isinstance(exc, IdempotencyConflict):
            # Sent before with other values and done then: the form gets a new key.
            errors = {"form": sent_before(language_of(request))}
            sent.pop("idempotency_key", None)
        elif "idempotency_key" in errors:  # no key, or not one the page makes: said above
            errors.setdefault("form", errors.pop("idempotency_key"))
        return await _ticket_page(
            request,
            engine,
            principal,
            ticket_id,
            errors=errors,
            sent=sent,
            status=exc.status,
        )
    return redirect(request, f"/console/tickets/{ticket_id}", done)


def _reply(form: FormData) -> tuple[ReplyCreate, str]:
    status = text(form, "status", limit=10)
    body = validated(ReplyCreate, {"body": _body(form), "status": status})
    return body, form_key(form, "idempotency_key")


def _note(form: FormData) -> tuple[NoteCreate, str]:
    body = validated(NoteCreate, {"body": _body(form)})
    return body, form_key(form, "idempotency_key")


def _body(form: FormData) -> str:
    raw = form.get("body")
    return raw.strip() if isinstance(raw, str) else ""


async def _once(
    conn: AsyncConnection,
    program: ProgramContext,
    key: str,
    body: ReplyCreate | NoteCreate,
    act: Callable[[], Awaitable[Ticket]],
) -> None:
    """``act`` once per form key: the form sent again (a double click, a reload) finds the
    first sending's record and does nothing, nor is it audited again."""

    async def operation() -> dict[str, Any]:
        ticket = await act()
        return {"ticket_id": str(ticket.id)}

    _, _, replayed = await idempotency_store.run_once(
        conn, program.id, key, body, operation, _no_lock
    )
    if replayed:
        audit_service.nothing_changed()  # the first sending has its entry


async def _no_lock() -> None:
    # The same form twice at once: the second's record collides with the first's, and its
    # transaction runs again to find the first (as the gift cards' forms do).
    return None


@router.post("/tickets/{ticket_id}/reply")
async def reply(
    request: Request, ticket_id: UUID, engine: EngineDep, principal: Handler
) -> Response:
    """A public reply: the member gets it (e-mail, else the app's inbox), once however
    often the form is sent."""

    async def act(
        conn: AsyncConnection, program: ProgramContext, data: tuple[ReplyCreate, str]
    ) -> None:
        body, key = data
        await _once(
            conn,
            program,
            f"ticket-reply:{ticket_id}:{key}",
            body,
            lambda: ticket_service.reply(conn, program, principal, ticket_id, body, clock.now()),
        )

    return await _change(
        request,
        engine,
        principal,
        ticket_id,
        _reply,
        act,
        gettext(language_of(request), "The reply has been sent."),
        "reply",
    )


@router.post("/tickets/{ticket_id}/note")
async def note(
    request: Request, ticket_id: UUID, engine: EngineDep, principal: Handler
) -> Response:
    """An internal note, never shown to the member; saved once however often the form is
    sent."""

    async def act(
        conn: AsyncConnection, program: ProgramContext, data: tuple[NoteCreate, str]
    ) -> None:
        body, key = data
        await _once(
            conn,
            program,
            f"ticket-note:{ticket_id}:{key}",
            body,
            lambda: ticket_service.note(conn, program, principal, ticket_id, body, clock.now()),
        )

    return await _change(
        request,
        engine,
        principal,
        ticket_id,
        _note,
        act,
        gettext(language_of(request), "The note is saved."),
        "note",
    )


def _assignment(principal: Principal) -> Callable[[FormData], TicketUpdate]:
    def build(form: FormData) -> TicketUpdate:
        chosen = text(form, "assignee_id", limit=40)
        if chosen is None:
            return TicketUpdate(unassign=True)
        if chosen == "me":
            if principal.staff_id is None:
                raise InvalidInput("only a staff member can take a ticket", field="assignee_id")
            return TicketUpdate(assignee_id=principal.staff_id)
        return validated(TicketUpdate, {"assignee_id": chosen})

    return build


@router.post("/tickets/{ticket_id}/assign")
async def assign(
    request: Request, ticket_id: UUID, engine: EngineDep, principal: Handler
) -> Response:
    """Assign the ticket to someone who handles tickets, to oneself ("me"), or to no one."""

    async def act(conn: AsyncConnection, program: ProgramContext, data: TicketUpdate) -> Ticket:
        return await ticket_service.update_ticket(
            conn, program, principal, ticket_id, data, clock.now()
        )

    return await _change(
        request,
        engine,
        principal,
        ticket_id,
        _assignment(principal),
        act,
        gettext(language_of(request), "The assignee has been changed."),
        "assign",
    )


def _update(form: FormData) -> TicketUpdate:
    fields = {k: text(form, k, limit=40) for k in ("status", "priority", "category")}
    return validated(TicketUpdate, {k: v for k, v in fields.items() if v is not None})


@router.post("/tickets/{ticket_id}/update")
async def update(
    request: Request, ticket_id: UUID, engine: EngineDep, principal: Handler
) -> Response:
    """Change the ticket's status (a move the workflow refuses is shown, not made),
    priority (its deadlines follow) or category; closing is ``status=closed``."""

    async def act(conn: AsyncConnection, program: ProgramContext, data: TicketUpdate) -> Ticket:
        return await ticket_service.update_ticket(
            conn, program, principal, ticket_id, data, clock.now()
        )

    return await _change(
        request,
        engine,
        principal,
        ticket_id,
        _update,
        act,
        gettext(language_of(request), "The ticket has been updated."),
        "update",
    )
