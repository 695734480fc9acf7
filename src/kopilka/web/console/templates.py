"""Console pages: the texts of messages — every kind and language with whether the program
wrote its own, and a template's page: its parts to edit, the variables it may read, a
preview with the kind's sample data, a test send, and its versions.

The same service calls as ``/v1/templates…``, with the same permissions: reading needs
``messages.read``, saving and test sends ``messages.send``.

The HTML part is previewed two ways: the source the unsaved form renders to is shown as
text (escaped, in a ``<pre>``), and the saved version is drawn in a sandboxed frame from a
route of its own whose policy allows the inline styles e-mail uses and nothing else (no
script, no request anywhere: ``default-src 'none'``). The console's own pages keep their
strict policy, which an ``<iframe srcdoc>`` would inherit (and so show e-mail without its
styles).
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import KopilkaError, NotFound
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.messaging.composition import SYSTEM_KINDS, known_kind
from kopilka.messaging.domain import LANGUAGES, Channel, Part, sms_length
from kopilka.messaging.notifications import NotificationKind
from kopilka.messaging.records import TemplateRow
from kopilka.messaging.schemas import TemplateSave, TestSend
from kopilka.messaging.templates import template_service
from kopilka.programs.service import ProgramContext
from kopilka.web.console.access import console_page
from kopilka.web.forms import field_errors, form_of, text, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
# The parts in the order a person reads a message: e-mail, then SMS, then push.
PARTS = (Part.SUBJECT, Part.TEXT, Part.HTML, Part.SMS, Part.PUSH_TITLE, Part.PUSH_BODY)
PART_LIMIT = 20_000


def _(text: str) -> str:
    """Marks a label for the catalogue; the template translates it."""
    return text


PART_LABELS = {
    "subject": _("E-mail subject"),
    "text": _("E-mail text"),
    "html": _("E-mail HTML (optional)"),
    "sms": _("SMS"),
    "push_title": _("Push title"),
    "push_body": _("Push text"),
}
# What the saved HTML may use when drawn in its frame: inline styles and inline images,
# nothing that runs or fetches.
FRAME_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src data:",
        "frame-ancestors 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "sandbox",
    ]
)


@dataclass(frozen=True)
class TemplateState:
    """A template as stored: the version in use (0: the shipped texts), its parts, its
    versions, newest first."""

    kind: NotificationKind
    language: str
    version: int
    parts: dict[str, str]
    saved_at: datetime | None
    versions: list[TemplateRow]
    zone: str


def _sample(value: Any) -> str:
    """A sample value as a template author reads it (JSON, dates as ISO text)."""
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _language(language: str) -> str:
    if language not in LANGUAGES:
        raise NotFound(f"no language {language!r} (one of {', '.join(LANGUAGES)})")
    return language


async def _state(
    engine: EngineDep, principal: Principal, kind: str, language: str
) -> TemplateState:
    spec = known_kind(kind)
    lang = _language(language)

    async def work(conn: AsyncConnection, program: ProgramContext) -> TemplateState:
        version, parts, at = await template_service.template(conn, program, kind, lang)
        versions = await template_service.template_versions(conn, program, kind, lang)
        return TemplateState(spec, lang, version, parts, at, versions, program.settings.timezone)

    return await read_only(engine, principal, work)


def _posted_parts(form: FormData) -> dict[str, str]:
    """The parts as the form sent them (line ends as the browser sends them: CRLF)."""
    found: dict[str, str] = {}
    for part in PARTS:
        value = form.get(f"parts.{part}")
        if isinstance(value, str):
            found[str(part)] = value.replace("\r\n", "\n")[: PART_LIMIT + 1]
    return found


def _page(
    request: Request,
    state: TemplateState,
    *,
    parts: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
    test: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    spec = state.kind
    return render(
        request,
        "console/messaging/template.html",
        {
            "state": state,
            "kind": spec.key,
            "purpose": str(spec.purpose),
            "parts": [
                (str(p), (parts if parts is not None else state.parts).get(str(p), ""))
                for p in PARTS
            ],
            "variables": [
                (name, _sample(spec.sample.get(name))) for name in sorted(spec.allowed())
            ],
            "errors": errors or {},
            "preview": preview,
            "has_html": bool(state.parts.get(str(Part.HTML), "").strip()),
            "testable": spec.key not in SYSTEM_KINDS,
            "channels": [str(c) for c in Channel],
            "test": test or {"channel": "email", "to": "", "member_id": ""},
            "base": _base(state),
            "part_labels": PART_LABELS,
        },
        status=status,
        zone=state.zone,
    )


@router.get("/templates")
async def templates_list(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
) -> Response:
    """Every message kind: its purpose, on or off, its channels, and per language whether
    the program wrote its own texts (and which version) or uses the shipped ones."""
    items = await read_only(
        engine, principal, lambda conn, program: template_service.summaries(conn, program)
    )
    return render(
        request, "console/messaging/templates.html", {"items": items, "languages": LANGUAGES}
    )


@router.get("/templates/{kind}/{language}")
async def template_page(
    request: Request,
    kind: str,
    language: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
) -> Response:
    """A template's parts, the variables they may read, a test send and the versions."""
    return _page(request, await _state(engine, principal, kind, language))


@router.post("/templates/{kind}/{language}")
async def save_template(
    request: Request,
    kind: str,
    language: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """Save the parts that changed as the program's next version; a part that does not
    compile, reads what the kind does not give or does not render is refused at the part,
    and nothing is saved."""
    state = await _state(engine, principal, kind, language)
    posted = _posted_parts(await form_of(request))
    changed = {p: s for p, s in posted.items() if s != state.parts.get(p, "")}
    lang = language_of(request)
    if not changed:
        return redirect(request, _base(state), gettext(lang, "Nothing changed."))
    try:
        body = validated(TemplateSave, {"parts": changed})
        version = await in_transaction(
            engine,
            principal,
            lambda conn, program: template_service.save_template(
                conn, program, kind, state.language, body.parts, clock.now()
            ),
        )
    except KopilkaError as exc:
        return _page(request, state, parts=posted, errors=field_errors(exc), status=422)
    notice = gettext(lang, "Saved as version %(version)s.", version=version)
    return redirect(request, _base(state), notice)


def _base(state: TemplateState) -> str:
    return f"/console/templates/{state.kind.key}/{state.language}"


@router.post("/templates/{kind}/{language}/preview")
async def preview_template(
    request: Request,
    kind: str,
    language: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
) -> Response:
    """Every part of the form (saved or not) rendered with the kind's sample data."""
    state = await _state(engine, principal, kind, language)
    posted = _posted_parts(await form_of(request))
    try:
        body = validated(TemplateSave, {"parts": posted or {"text": ""}})
        _language_used, rendered = await read_only(
            engine,
            principal,
            lambda conn, program: template_service.preview(
                conn,
                program,
                kind,
                member_id=None,
                language=state.language,
                variables={},
                parts=body.parts,
            ),
        )
    except KopilkaError as exc:
        return _page(request, state, parts=posted, errors=field_errors(exc), status=422)
    length = sms_length(rendered.get(str(Part.SMS), ""))
    preview = {
        "parts": rendered,
        "sms_segments": length.segments,
        "sms_units": length.units,
        "sms_encoding": str(length.encoding),
    }
    return _page(request, state, parts=posted, preview=preview)


@router.get("/templates/{kind}/{language}/preview.html")
async def saved_html(
    kind: str,
    language: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
) -> Response:
    """The saved HTML part rendered with the sample data, for the page's sandboxed frame:
    a policy of its own lets e-mail's inline styles draw and nothing run or load."""
    lang = _language(language)
    _language_used, rendered = await read_only(
        engine,
        principal,
        lambda conn, program: template_service.preview(
            conn, program, kind, member_id=None, language=lang, variables={}, parts=None
        ),
    )
    return HTMLResponse(
        rendered.get(str(Part.HTML), ""),
        headers={
            "Content-Security-Policy": FRAME_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@router.post("/templates/{kind}/{language}/test")
async def test_send(
    request: Request,
    kind: str,
    language: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_SEND)],
) -> Response:
    """Queue the saved texts on one channel to a test address (sample data) or a member
    (their data); consent and quiet hours do not apply to a test, suppressions do."""
    state = await _state(engine, principal, kind, language)
    form = await form_of(request)
    sent = {
        "channel": text(form, "channel", limit=20) or "email",
        "to": text(form, "to", limit=500) or "",
        "member_id": text(form, "member_id", limit=100) or "",
    }
    try:
        body = validated(
            TestSend,
            {
                "channel": sent["channel"],
                "to": sent["to"] or None,
                "member_id": sent["member_id"] or None,
                "language": state.language,
            },
        )
        message = await in_transaction(
            engine,
            principal,
            lambda conn, program: template_service.test(
                conn,
                program,
                kind,
                channel=body.channel,
                to=body.to,
                member_id=body.member_id,
                language=body.language,
                variables={},
                now=clock.now(),
            ),
        )
    except KopilkaError as exc:
        errors = {f"test.{k}": v for k, v in field_errors(exc).items()}
        return _page(request, state, errors=errors, test=sent, status=422)
    notice = gettext(
        language_of(request),
        "Test message queued to %(to)s (%(channel)s); the sender sends it next round.",
        to=message.to_address or sent["member_id"],
        channel=message.channel,
    )
    return redirect(request, _base(state), notice)
