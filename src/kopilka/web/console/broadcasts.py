"""Console pages: broadcasts — the list with each one's status and progress, a new
broadcast (a marketing kind and its texts, a segment as the audience, channels, now or
later), and a broadcast's page with its messages counted by status and the actions the API
offers (pause, resume, cancel).

The same service calls as ``/v1/broadcasts…`` with the same permissions: reading needs
``messages.read``; creating and the actions ``messages.send``. The new-broadcast form carries
a one-time key: sent twice (a double click, a reload), it creates one broadcast.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.audit.service import audit_service
from kopilka.errors import IdempotencyConflict, KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.idempotency.service import idempotency_store
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, next_cursor
from kopilka.messaging.broadcasts import (
    CANCELLED,
    DONE,
    MARKETING,
    PAUSED,
    RUNNING,
    SCHEDULED,
    BroadcastView,
    broadcast_service,
)
from kopilka.messaging.domain import Channel
from kopilka.messaging.notifications import KINDS
from kopilka.messaging.schemas import BroadcastCreate
from kopilka.programs.service import ProgramContext
from kopilka.segments.schemas import SegmentOut
from kopilka.segments.service import segment_service
from kopilka.web.charts import progress_bar
from kopilka.web.console.access import console_page
from kopilka.web.console.members import form_key, form_key_again, new_form_key, sent_before
from kopilka.web.forms import FormInvalid, choices, field_errors, form_of, validated
from kopilka.web.i18n import language_of, translations
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 50
SEGMENT_CHOICES = 200  # the audience list of the form: segments in key order
# Messages by status, in the order a message moves; "clicked" is as far as the program can
# know (no open pixel).
STATUSES = ("queued", "sent", "delivered", "clicked", "failed", "bounced", "skipped")
Action = Literal["pause", "resume", "cancel"]
# Long texts get a text area; the others a line.
LONG_VARIABLES = frozenset({"body", "summary"})


def _(text: str) -> str:
    """Marks a label for the catalogue; the template translates it."""
    return text


STATUS_LABELS = {
    SCHEDULED: _("scheduled"),
    RUNNING: _("running"),
    PAUSED: _("paused"),
    DONE: _("done"),
    CANCELLED: _("cancelled"),
    "queued": _("queued"),
    "sent": _("sent"),
    "delivered": _("delivered"),
    "clicked": _("clicked"),
    "failed": _("failed"),
    "bounced": _("bounced"),
    "skipped": _("skipped"),
}


def actions_of(view: BroadcastView) -> list[str]:
    """The actions the service takes on the broadcast now (what the page offers): a
    broadcast whose messages are all made may still be paused or cancelled while some wait."""
    waiting = view.counts.get("queued", 0) > 0
    status = view.row.status
    stoppable = status in (SCHEDULED, RUNNING) or (status == DONE and waiting)
    found = ["pause"] if stoppable else []
    if status == PAUSED:
        found.append("resume")
    if stoppable or status == PAUSED:
        found.append("cancel")
    return found


@router.get("/broadcasts")
async def broadcasts_list(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
    cursor: str | None = None,
) -> Response:
    """Broadcasts, newest first: status, audience size, progress and what was sent."""
    before = decode_cursor(cursor) if cursor else None

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[list[BroadcastView], str]:
        views = await broadcast_service.page(conn, program, PAGE, before)
        return views, program.settings.timezone

    views, zone = await read_only(engine, principal, work)
    after = next_cursor([v.row for v in views], PAGE)
    return render(
        request,
        "console/messaging/broadcasts.html",
        {
            "broadcasts": views,
            "labels": STATUS_LABELS,
            "next_url": f"/console/broadcasts?cursor={after}" if after else None,
        },
        zone=zone,
    )


@dataclass
class BroadcastDraft:
    """The new-broadcast form as posted."""

    name: str = ""
    kind: str = "broadcast"
    variables: dict[str, str] = field(default_factory=dict)
    segment: str = ""
    channels: list[str] = field(default_factory=list)
    when: str = "now"
    send_at: str = ""
    # The share of the audience held back (sent nothing) to measure the broadcast against.
    holdout_percent: str = "0"
    # The form's one-time key: the broadcast is stored under it.
    key: str = field(default_factory=new_form_key)


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def read_broadcast(form: FormData) -> BroadcastDraft:
    kind = _text(form, "kind", 40)
    kind = kind if kind in MARKETING else "broadcast"
    spec = KINDS[kind]
    return BroadcastDraft(
        name=_text(form, "name", 200),
        kind=kind,
        variables={v: _text(form, f"variables.{v}") for v in sorted(spec.variables)},
        segment=_text(form, "segment", 64),
        channels=choices(form, "channels"),
        when="later" if _text(form, "when") == "later" else "now",
        send_at=_text(form, "send_at", 40),
        holdout_percent=_text(form, "holdout_percent", 10) or "0",
        key=form_key_again(_text(form, "idempotency_key", 100)),
    )


def _send_at(draft: BroadcastDraft, zone: str) -> str | None:
    """The moment to start, as the API takes it: the form's local date and time in the
    program's time zone (``None``: now)."""
    if draft.when != "later":
        return None
    try:
        local = datetime.fromisoformat(draft.send_at)
    except ValueError:
        raise FormInvalid({"send_at": "a date and time (YYYY-MM-DDTHH:MM)"}) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(zone))
    return local.isoformat()


def _holdout(draft: BroadcastDraft) -> int:
    """The form's holdout share as a whole number (ASCII digits only)."""
    value = draft.holdout_percent
    if not (value.isascii() and value.isdigit()):
        raise FormInvalid({"holdout_percent": "a whole number from 0 to 50"})
    return int(value)


async def _audiences(engine: EngineDep, principal: Principal) -> tuple[list[SegmentOut], str]:
    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[list[SegmentOut], str]:
        segments = await segment_service.listing(conn, program, limit=SEGMENT_CHOICES)
        return segments, program.settings.timezone

    return await read_only(engine, principal, work)


def _new_page(
    request: Request,
    draft: BroadcastDraft,
    segments: list[SegmentOut],
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    spec = KINDS[draft.kind]
    return render(
        request,
        "console/messaging/broadcast_new.html",
        {
            "draft": draft,
            "kinds": MARKETING,
            "variables": [(v, v in LONG_VARIABLES) for v in sorted(spec.variables)],
            "segments": segments,
            "channels": [str(c) for c in Channel],
            "errors": errors or {},
        },
        status=status,
    )


@router.get("/broadcasts/new")
async def new_broadcast(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """A new broadcast: what it says, to which segment, on which channels, when."""
    segments, _zone = await _audiences(engine, principal)
    return _new_page(request, BroadcastDraft(), segments)


@router.post("/broadcasts/new")
async def create_broadcast(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """Create the broadcast (the worker makes and sends its messages from its start); the
    kind's texts must render for every channel and language, or it is refused at the
    variables. ``action=refresh`` shows another kind's variables."""
    form = await form_of(request)
    draft = read_broadcast(form)
    segments, zone = await _audiences(engine, principal)
    if _text(form, "action", 20) == "refresh":
        return _new_page(request, draft, segments)
    try:
        body = validated(
            BroadcastCreate,
            {
                "name": draft.name,
                "kind": draft.kind,
                "variables": {k: v for k, v in draft.variables.items() if v},
                "channels": draft.channels or None,
                "segment": draft.segment or None,
                "send_at": _send_at(draft, zone),
                "holdout_percent": _holdout(draft),
            },
        )
        key = form_key(form, "idempotency_key")

        async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
            async def operation() -> dict[str, Any]:
                view = await broadcast_service.create(
                    conn,
                    program,
                    name=body.name,
                    kind=body.kind,
                    variables=body.variables,
                    channels=body.channels,
                    segment=body.segment,
                    send_at=body.send_at,
                    holdout_percent=body.holdout_percent,
                    now=clock.now(),
                )
                return {"id": str(view.row.id), "total": view.row.total}

            _, made, replayed = await idempotency_store.run_once(
                conn, program.id, f"broadcast:{key}", body, operation, _no_lock
            )
            if replayed:
                audit_service.nothing_changed()  # the first sending has its entry
            return made

        made = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        errors = field_errors(exc)
        # The form's audience is its segment: "give members or a segment" is about it.
        for name in ("form", "members"):
            if name in errors and not draft.segment:
                errors = {"segment": errors.pop(name), **errors}
        if isinstance(exc, IdempotencyConflict):
            # Sent before with other values and done then: the form gets a new key.
            errors = {"form": sent_before(language_of(request))}
            draft.key = new_form_key()
        elif "idempotency_key" in errors:  # no key, or not one the page makes: said above
            errors.setdefault("form", errors.pop("idempotency_key"))
        return _new_page(request, draft, segments, errors=errors, status=422)
    total = int(made["total"])
    notice = translations(language_of(request)).ngettext(
        "Broadcast created for %(num)s member.", "Broadcast created for %(num)s members.", total
    ) % {"num": total}
    return redirect(request, f"/console/broadcasts/{made['id']}", notice)


async def _no_lock() -> None:
    # The same form twice at once: the second's stored answer collides with the first's,
    # and its transaction runs again to replay the first (as the gift cards' forms do).
    return None


async def _view(
    engine: EngineDep, principal: Principal, broadcast_id: UUID
) -> tuple[BroadcastView, str]:
    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[BroadcastView, str]:
        view = await broadcast_service.get(conn, program, broadcast_id)
        return view, program.settings.timezone

    return await read_only(engine, principal, work)


def _broadcast_page(
    request: Request,
    view: BroadcastView,
    zone: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    row = view.row
    share = view.done / row.total if row.total else 0.0
    language = language_of(request)
    label = gettext(
        language, "Members done: %(done)s of %(total)s", done=view.done, total=row.total
    )
    return render(
        request,
        "console/messaging/broadcast.html",
        {
            "view": view,
            "row": row,
            "labels": STATUS_LABELS,
            "statuses": [(s, view.counts.get(s, 0)) for s in STATUSES],
            "others": sorted((s, n) for s, n in view.counts.items() if s not in STATUSES),
            "progress": progress_bar(share, label),
            "progress_label": label,
            "actions": actions_of(view),
            "error": error,
        },
        status=status,
        zone=zone,
    )


@router.get("/broadcasts/{broadcast_id}")
async def broadcast_page(
    request: Request,
    broadcast_id: UUID,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
) -> Response:
    """A broadcast: what it says, its progress, its messages by status, and its actions."""
    view, zone = await _view(engine, principal, broadcast_id)
    return _broadcast_page(request, view, zone)


@router.post("/broadcasts/{broadcast_id}/{action}")
async def change_broadcast(
    request: Request,
    broadcast_id: UUID,
    action: Action,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """Pause, resume or cancel (cancelling withdraws its messages still queued)."""
    try:
        await in_transaction(
            engine,
            principal,
            lambda conn, program: broadcast_service.set_status(
                conn, program, broadcast_id, action, clock.now()
            ),
        )
    except KopilkaError as exc:
        if exc.status == 404:
            raise
        view, zone = await _view(engine, principal, broadcast_id)
        return _broadcast_page(request, view, zone, error=exc.detail, status=exc.status)
    language = language_of(request)
    notice = {
        "pause": gettext(language, "Broadcast paused."),
        "resume": gettext(language, "Broadcast resumed."),
        "cancel": gettext(language, "Broadcast cancelled."),
    }[action]
    return redirect(request, f"/console/broadcasts/{broadcast_id}", notice)
