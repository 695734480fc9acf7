"""App pages: the member's invitations to the program's events — the events their tier is
invited to (and those they accepted), not over yet, with their answer — and accepting or
declining one (the same service as ``POST /v1/members/{id}/events/{key}/accept`` and
``/decline``: answering the same again changes nothing)."""

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.benefits.event_schemas import MemberEvent, MemberEventList
from kopilka.benefits.event_service import program_event_service
from kopilka.errors import KopilkaError, MemberBlocked, NotFound
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.web.app.access import (
    MemberCaller,
    SignedInMember,
    app_url,
    member_read,
    member_transaction,
)
from kopilka.web.app.history import app_page
from kopilka.web.forms import form_of
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect

router = APIRouter(prefix="/app", include_in_schema=False)


def _(text: str) -> str:
    """Marks a text for the catalogues; it is translated when shown."""
    return text


# Why an answer is not taken, in the member's words (by the refusal's ``reason``).
REFUSALS = {
    "not_invited": _("Your tier is not invited to this event."),
    "cancelled": _("This event is cancelled."),
    "started": _("This event has started: answers are no longer taken."),
    "full": _("Sorry, there are no places left."),
}
BLOCKED = _("Your card is blocked: invitations cannot be answered.")
REFUSALS["member_blocked"] = BLOCKED
DONE = {
    "accept": _("See you there: you are on the guest list."),
    "decline": _("Thank you for letting us know."),
}


def refusal_text(language: str, reason: object, detail: str) -> str:
    known = REFUSALS.get(reason) if isinstance(reason, str) else None
    return gettext(language, known) if known else detail


async def _page(
    request: Request, member: MemberCaller, *, error: str | None = None, status: int = 200
) -> Response:
    async def read(conn: AsyncConnection, program: ProgramContext) -> MemberEventList:
        return await program_event_service.member_events(
            conn, program, member.member_id, clock.now()
        )

    found = await member_read(request, read)
    language = language_of(request)
    return app_page(
        request,
        member,
        "app/events/events.html",
        {
            "events": found.items,
            "refusals": {k: gettext(language, v) for k, v in REFUSALS.items()},
            "error": error,
        },
        status=status,
    )


@router.get("/{slug}/events")
async def events(request: Request, member: SignedInMember) -> Response:
    """The member's invitations, soonest first, each with their answer and the buttons to
    accept or decline while answers are taken."""
    return await _page(request, member)


@router.post("/{slug}/events/{key}/accept")
async def accept(request: Request, member: SignedInMember, key: str) -> Response:
    """Take a place; refused (full, started, cancelled): the page again saying why."""
    return await _answer(request, member, key, "accept")


@router.post("/{slug}/events/{key}/decline")
async def decline(request: Request, member: SignedInMember, key: str) -> Response:
    """Say the member will not come (a place they took is free again)."""
    return await _answer(request, member, key, "decline")


async def _answer(
    request: Request, member: MemberCaller, key: str, what: Literal["accept", "decline"]
) -> Response:
    await form_of(request)  # the CSRF check: the form carries nothing else
    language = language_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberEvent:
        answer = program_event_service.accept if what == "accept" else program_event_service.decline
        return await answer(conn, program, member.member_id, key, clock.now())

    try:
        await member_transaction(request, work)
    except NotFound:
        raise
    except MemberBlocked:
        return await _page(request, member, error=gettext(language, BLOCKED), status=403)
    except KopilkaError as exc:
        message = refusal_text(language, exc.extra.get("reason"), exc.detail)
        return await _page(request, member, error=message, status=exc.status)
    return redirect(request, app_url(member.slug, "events"), gettext(language, DONE[what]))
