"""Console pages: journeys — the list (a page at a time) with each one's status, version
and conversion; a journey's page (its entry, steps, goal, re-entry and holdout in words,
the counts on each step, earlier versions' steps under their version, conversion against
the holdout, cost and return, the versions, the dry run's form, and the actions pause,
resume, archive and publish the draft); and the editor of a new journey or of a journey's
draft, its document as JSON (errors shown at their line with the field named, the text
kept, nothing saved). The runs are ``journey_runs`` (included here); the dry run on the
journey's page, ``journey_dryrun``.

The same service calls as ``/v1/journeys…`` with the same permissions: reading needs
``messages.read``; creating, editing and the actions ``messages.send``.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput, KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.journeys.domain import KEY_PATTERN, JourneyStatus, parse_journey
from kopilka.journeys.returns import Cost, Return
from kopilka.journeys.service import JourneyView, journey_service
from kopilka.journeys.statistics import JourneyStats
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_key_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.web.console import journey_runs
from kopilka.web.console.access import console_page
from kopilka.web.console.draft_text import DraftSyntaxError, LocatedError, located_errors, pretty
from kopilka.web.console.journey_dryrun import Tried, asked_of, run_asked
from kopilka.web.console.journey_words import (
    BASES,
    JOURNEY_STATUSES,
    OUTCOMES,
    STEP_TYPES,
    JourneyWords,
    in_order,
    journey_words,
)
from kopilka.web.forms import form_of, too_deep
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
Action = Literal["publish", "pause", "resume", "archive"]
PAGE = 50
KEY = re.compile(KEY_PATTERN)
# What the new-journey form starts with: a small journey to change rather than a blank page.
EXAMPLE: dict[str, Any] = {
    "name": "Welcome",
    "entry": {"type": "event", "event": "member.registered"},
    "goal": {"event": "purchase.recorded", "within_days": 14},
    "reentry": {"policy": "once"},
    "holdout_percent": 10,
    "steps": [
        {"id": "gift", "type": "points", "amount": 100, "reason": "welcome"},
        {"id": "pause", "type": "wait", "days": 3},
        {"id": "done", "type": "exit"},
    ],
}


@dataclass(frozen=True)
class Listed:
    view: JourneyView
    stats: JourneyStats | None  # None: the document in force no longer parses


@router.get("/journeys")
async def journeys_list(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
    cursor: str | None = None,
) -> Response:
    """The program's journeys in key order, a page at a time: status, version in force,
    entered, converted and conversion."""
    after = decode_key_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[list[Listed], str]:
        found = []
        for view in await journey_service.listing(conn, program, after=after, limit=PAGE):
            found.append(Listed(view, await _stats(conn, program, view.key)))
        return found, program.settings.timezone

    listed, zone = await read_only(engine, principal, work)
    next_url = None
    if len(listed) == PAGE:
        next_url = f"/console/journeys?cursor={encode_cursor(listed[-1].view.key)}"
    return render(
        request,
        "console/journeys/list.html",
        {"journeys": listed, "statuses": JOURNEY_STATUSES, "next_url": next_url},
        zone=zone,
    )


async def _stats(conn: AsyncConnection, program: ProgramContext, key: str) -> JourneyStats | None:
    try:
        return await journey_service.stats(conn, program, key)
    except InvalidInput:  # a document stored before a check it now fails: still listed
        return None


# --- a new journey and the draft's editor ----------------------------------------------------


def _document(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; ``DraftSyntaxError`` at the line and column at fault."""
    deep = too_deep(text)
    if deep is not None:
        line = text.count("\n", 0, deep) + 1
        raise DraftSyntaxError("brackets nest too deep", line, deep - text.rfind("\n", 0, deep))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DraftSyntaxError(exc.msg, exc.lineno, exc.colno) from None
    if not isinstance(document, dict):
        raise DraftSyntaxError("the journey document must be a JSON object ({…})", 1, 1)
    return document


@dataclass
class Edited:
    """The editor's form as shown: the key (a new journey), the text, and what is wrong."""

    text: str
    key: str = ""
    syntax: DraftSyntaxError | None = None
    errors: list[LocatedError] | None = None
    field_errors: dict[str, str] | None = None

    @property
    def refused(self) -> bool:
        return bool(self.syntax or self.errors or self.field_errors)


def _refusal(edited: Edited, exc: KopilkaError) -> None:
    """Put a refusal of the service beside the form: the key's beside the key, the
    document's at their lines."""
    if exc.field == "key":
        edited.field_errors = {"key": exc.detail}
        return
    errors = exc.extra.get("errors") if isinstance(exc, InvalidInput) else None
    edited.errors = located_errors(
        edited.text, errors or [{"field": exc.field or "document", "message": exc.detail}]
    )


def _editor(
    request: Request, edited: Edited, view: JourneyView | None, zone: str = "UTC"
) -> Response:
    return render(
        request,
        "console/journeys/edit.html",
        {"edited": edited, "journey": view, "statuses": JOURNEY_STATUSES},
        status=422 if edited.refused else 200,
        zone=zone,
    )


def _submitted(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/journeys/new")
async def new_journey(
    request: Request,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """A new journey: its key and its document (saved as its draft; nothing runs until it
    is published)."""
    return _editor(request, Edited(pretty(EXAMPLE)), None)


@router.post("/journeys/new")
async def create_journey(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """Create the journey (``POST /v1/journeys``); a bad key or document is shown again
    with the field named and nothing is stored."""
    form = await form_of(request)
    edited = Edited(_submitted(form, "document"), key=_submitted(form, "key").strip()[:64])
    language = language_of(request)
    if not KEY.match(edited.key):
        edited.field_errors = {
            "key": gettext(language, "Lower-case letters, digits, - and _ (at most 64).")
        }
    try:
        document = _document(edited.text)
    except DraftSyntaxError as syntax:
        edited.syntax = syntax
        return _editor(request, edited, None)
    if edited.refused:
        try:  # the document's own faults too, so that one round trip shows them all
            journey_service.checked(document)
        except InvalidInput as invalid:
            key_error = edited.field_errors
            _refusal(edited, invalid)
            edited.field_errors = key_error
        return _editor(request, edited, None)
    try:
        await in_transaction(
            engine,
            principal,
            lambda conn, program: journey_service.create(
                conn, program, edited.key, document, clock.now()
            ),
        )
    except KopilkaError as exc:
        if exc.status >= 500:
            raise
        _refusal(edited, exc)
        return _editor(request, edited, None)
    notice = gettext(language, "The journey is saved as a draft: publish it to start it.")
    return redirect(request, f"/console/journeys/{edited.key}", notice)


async def _journey(
    engine: EngineDep, principal: Principal, key: str
) -> tuple[JourneyView, ProgramContext]:
    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[JourneyView, ProgramContext]:
        return await journey_service.get(conn, program, key), program

    return await read_only(engine, principal, work)


@router.get("/journeys/{key}/draft")
async def draft_page(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """The journey's draft as JSON (without one: a copy of the version in force)."""
    view, program = await _journey(engine, principal, key)
    document = view.draft if view.draft is not None else view.document
    return _editor(request, Edited(pretty(document or {})), view, program.settings.timezone)


@router.post("/journeys/{key}/draft")
async def save_draft(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """Replace the draft (``PUT /v1/journeys/{key}/draft``); the version in force is not
    touched until the draft is published."""
    form = await form_of(request)
    edited = Edited(_submitted(form, "document"))
    try:
        document = _document(edited.text)
    except DraftSyntaxError as syntax:
        edited.syntax = syntax
    else:
        try:
            await in_transaction(
                engine,
                principal,
                lambda conn, program: journey_service.put_draft(
                    conn, program, key, document, clock.now()
                ),
            )
        except KopilkaError as exc:
            if exc.status in (404,) or exc.status >= 500:
                raise
            _refusal(edited, exc)
    if edited.refused:
        view, program = await _journey(engine, principal, key)
        return _editor(request, edited, view, program.settings.timezone)
    notice = gettext(language_of(request), "The draft is saved.")
    return redirect(request, f"/console/journeys/{key}", notice)


# --- a journey's page and its actions ------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    view: JourneyView
    stats: JourneyStats | None
    program: ProgramContext
    returns: tuple[Cost, Return] | None = None
    tried: Tried = field(default_factory=Tried)


async def _seen(
    engine: EngineDep,
    principal: Principal,
    key: str,
    tried: Tried | None = None,
    kept_days: int = 0,
) -> Seen:
    """The journey, its results and, when asked for, its dry run (``tried``, whose days the
    query string gave; ``kept_days`` of the outbox, where the dry run reads history)."""
    asked = tried or Tried()

    async def work(conn: AsyncConnection, program: ProgramContext) -> Seen:
        view = await journey_service.get(conn, program, key)
        stats = await _stats(conn, program, key)
        returns = await journey_service.returns(conn, program, key, clock.now())
        await run_asked(conn, program, key, asked, kept_days)
        return Seen(view, stats, program, returns, asked)

    return await read_only(engine, principal, work, snapshot=True)


def _words(request: Request, seen: Seen) -> JourneyWords | None:
    document = seen.view.document if seen.view.document is not None else seen.view.draft
    try:
        parsed = parse_journey(document)
    except InvalidInput:
        return None
    settings = seen.program.settings
    fmt = Formats(language_of(request), settings.timezone)
    return journey_words(parsed, fmt, settings.money_currency, settings.points_currency())


def actions_of(view: JourneyView) -> list[str]:
    """What the service does to the journey now (the buttons the page offers)."""
    found = []
    if view.draft is not None and view.status != JourneyStatus.ARCHIVED:
        found.append("publish")
    if view.status == JourneyStatus.ACTIVE:
        found.append("pause")
    if view.status == JourneyStatus.PAUSED:
        found.append("resume")
    if view.status != JourneyStatus.ARCHIVED:
        found.append("archive")
    return found


def _journey_page(
    request: Request, seen: Seen, *, error: str | None = None, status: int = 200
) -> Response:
    stats = seen.stats
    cost, returned = seen.returns if seen.returns is not None else (None, None)
    if seen.tried.errors:
        status = 422
    return render(
        request,
        "console/journeys/show.html",
        {
            "journey": seen.view,
            "stats": stats,
            "cost": cost,
            "returned": returned,
            "tried": seen.tried,
            "bases": BASES,
            "words": _words(request, seen),
            "counts": {s.id: s for s in stats.steps} if stats else {},
            "step_types": STEP_TYPES,
            "outcomes": OUTCOMES,
            "in_order": in_order,
            "statuses": JOURNEY_STATUSES,
            "actions": actions_of(seen.view),
            "document": pretty(seen.view.document) if seen.view.document else None,
            "draft": pretty(seen.view.draft) if seen.view.draft else None,
            "error": error,
        },
        status=status,
        zone=seen.program.settings.timezone,
    )


@router.get("/journeys/{key}")
async def journey_page(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
) -> Response:
    """A journey in words with the counts on each step, its results, cost and return,
    versions, and — with ``?dry_run=1&from=…&to=…`` — its dry run over those days."""
    tried = asked_of(request)
    kept_days = int(request.app.state.settings.outbox_retention_days)
    return _journey_page(request, await _seen(engine, principal, key, tried, kept_days))


@router.post("/journeys/{key}/{action}")
async def change_journey(
    request: Request,
    key: str,
    action: Action,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """Publish the draft, pause, resume or archive (``POST /v1/journeys/{key}/…``)."""
    status = {
        "pause": JourneyStatus.PAUSED,
        "resume": JourneyStatus.ACTIVE,
        "archive": JourneyStatus.ARCHIVED,
    }

    async def work(conn: AsyncConnection, program: ProgramContext) -> JourneyView:
        if action == "publish":
            return await journey_service.publish(conn, program, key, clock.now())
        return await journey_service.set_status(conn, program, key, status[action], clock.now())

    try:
        view = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        if exc.status == 404 or exc.status >= 500:
            raise
        seen = await _seen(engine, principal, key)
        return _journey_page(request, seen, error=exc.detail, status=exc.status)
    language = language_of(request)
    notice = {
        "publish": gettext(language, "Version %(n)s is published.", n=view.version or 0),
        "pause": gettext(language, "The journey is paused."),
        "resume": gettext(language, "The journey is resumed."),
        "archive": gettext(language, "The journey is archived."),
    }[action]
    return redirect(request, f"/console/journeys/{key}", notice)


router.include_router(journey_runs.router)
