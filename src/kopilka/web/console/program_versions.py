"""Console pages of the program's versions: publishing the draft (what members will notice
first, then a confirmation), the published versions, one version in plain words, and
rollback to a version. Included in ``program``'s router.

Publishing and rollback need ``program.publish``, as ``POST /v1/program/publish`` and
``POST /v1/program/versions/{n}/publish`` do; reading needs ``program.read``.
"""

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import Conflict, InvalidInput, KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_number_cursor, encode_cursor
from kopilka.kit.types import INT32_MAX
from kopilka.programs.service import ProgramContext, draft_fingerprint, program_service
from kopilka.programs.version_schemas import (
    Draft,
    ProgramInForce,
    PublishRequest,
    Version,
    VersionSummary,
)
from kopilka.web.console.access import console_page
from kopilka.web.console.draft_text import pretty
from kopilka.web.console.program_diff import DiffView, describe_diff
from kopilka.web.forms import field_errors, flag, form_of, text, validated
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, redirect, render
from kopilka.web.words.program_words import describe_program
from kopilka.web.words.rule_words import Node, Words, words_for

router = APIRouter(include_in_schema=False)

VersionNumber = Annotated[int, Path(ge=1, le=INT32_MAX)]
PAGE_SIZE = 50


def page_words(request: Request, program: ProgramContext, document: Node) -> Words:
    """The words of ``document`` in the page's language and the program's time zone."""
    language = language_of(request)
    return words_for(language, Formats(language, program.settings.timezone), document)


def changes_between(
    request: Request, program: ProgramContext, before: Node, after: Node
) -> DiffView:
    """What ``after`` changes from ``before``, in the page's words."""
    return describe_diff(
        before, after, page_words(request, program, before), page_words(request, program, after)
    )


# --- publishing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishSeen:
    program: ProgramContext
    live: ProgramInForce
    draft: Draft


@router.get("/program/publish")
async def publish_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_PUBLISH)],
) -> Response:
    """What publishing the draft changes for members, and the form that confirms it."""
    return await _publish_page(request, engine, principal, {"note": "", "member_notice": ""})


@router.post("/program/publish")
async def publish(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_PUBLISH)],
) -> Response:
    """Without ``confirm``: the summary of changes, asking to confirm. With it: publish the
    draft as the next version (``POST /v1/program/publish``) and show that version.

    The confirmation carries what it was shown: the version in force and the draft's
    fingerprint. Publishing refuses (409, the summary of now shown again) when either
    changed since: a colleague's later change is never published unseen, and the same
    form sent again publishes nothing more."""
    form = await form_of(request)
    values = {
        "note": text(form, "note", limit=5000) or "",
        "member_notice": text(form, "member_notice", limit=5000) or "",
    }
    if not flag(form, "confirm"):
        return await _publish_page(request, engine, principal, values)
    seen_in_force = _seen_version(form)
    seen_draft = text(form, "draft_seen", limit=100) or ""
    try:
        body = validated(
            PublishRequest,
            {"note": values["note"] or None, "member_notice": values["member_notice"] or None},
        )
        if seen_in_force is None or not FINGERPRINT.fullmatch(seen_draft):
            raise Conflict("the form lacks what it was shown", field="form", reason="stale_form")
        version = await in_transaction(
            engine,
            principal,
            lambda conn, program: program_service.publish(
                conn,
                program.id,
                clock.now(),
                body.note,
                notice=body.member_notice,
                seen_in_force=seen_in_force,
                seen_draft=seen_draft,
            ),
        )
    except (InvalidInput, Conflict) as refused:
        return await _publish_page(request, engine, principal, values, refused)
    notice = gettext(language_of(request), "Version %(n)s is published.", n=version.version)
    return redirect(request, f"/console/program/versions/{version.version}", notice)


async def _publish_page(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    values: dict[str, str],
    refused: KopilkaError | None = None,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> PublishSeen:
        live = await program_service.in_force(conn, program.id)
        return PublishSeen(program, live, await program_service.draft(conn, program.id))

    seen = await read_only(engine, principal, work)
    changes = changes_between(request, seen.program, seen.live.document, seen.draft.document)
    return render(
        request,
        "console/program/publish.html",
        {
            "draft": seen.draft,
            "live": seen.live,
            "draft_seen": draft_fingerprint(seen.draft.document),
            "changes": changes,
            "values": values,
            "errors": _refusal(request, refused) if refused else {},
        },
        status=refused.status if refused else 200,
        zone=seen.program.settings.timezone,
    )


# What a form of these pages carries of what it showed: the version in force, and the
# draft's fingerprint (``draft_fingerprint``: a SHA-256 in hex).
FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _seen_version(form: FormData) -> int | None:
    """The version in force the form was shown with; None when it sent none (or junk)."""
    raw = text(form, "in_force_seen", limit=20) or ""
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) <= INT32_MAX else None


def _refusal(request: Request, refused: KopilkaError) -> dict[str, str]:
    """A refusal's messages beside their fields; the refusals of a form that no longer
    matches what is stored, in the page's language."""
    language = language_of(request)
    reason = refused.extra.get("reason")
    if reason == "stale_version":
        message = gettext(
            language,
            "Already changed: version %(n)s is in force now. Nothing was done; "
            "below is what confirming would change now.",
            n=refused.extra.get("in_force"),
        )
        return {"version": message}
    if reason == "stale_draft":
        message = gettext(
            language,
            "The draft has changed since this page was shown. Nothing was published; "
            "check the changes below and confirm again.",
        )
        return {"draft": message}
    if reason == "stale_form":
        message = gettext(
            language,
            "This form does not say what it was shown. Nothing was done; "
            "check the changes below and confirm again.",
        )
        return {"form": message}
    return field_errors(refused)


# --- versions -------------------------------------------------------------------------------


@router.get("/program/versions")
async def versions(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
    cursor: str | None = None,
) -> Response:
    """Published versions, newest first, 50 a page."""
    before = _cursor(cursor)

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[ProgramContext, int, list[VersionSummary]]:
        live = await program_service.in_force(conn, program.id)
        page = await program_service.versions(conn, program.id, limit=PAGE_SIZE, before=before)
        return program, live.version, page

    program, in_force, items = await read_only(engine, principal, work)
    more = len(items) == PAGE_SIZE
    next_url = f"?cursor={encode_cursor(items[-1].version)}" if more else None
    return render(
        request,
        "console/program/versions.html",
        {"items": items, "in_force": in_force, "next_url": next_url},
        zone=program.settings.timezone,
    )


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        number = decode_number_cursor(cursor)
    except KopilkaError:
        return None  # a cursor this page never gave: the first page
    return number if number <= INT32_MAX else None


@dataclass(frozen=True)
class VersionSeen:
    program: ProgramContext
    live: ProgramInForce
    version: Version


async def _version(engine: EngineDep, principal: Principal, number: int) -> VersionSeen:
    async def work(conn: AsyncConnection, program: ProgramContext) -> VersionSeen:
        live = await program_service.in_force(conn, program.id)
        return VersionSeen(program, live, await program_service.version(conn, program.id, number))

    return await read_only(engine, principal, work)


@router.get("/program/versions/{number}")
async def version_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
    number: VersionNumber,
) -> Response:
    """One published version in plain words, with its document and what it differs in
    from the version in force."""
    seen = await _version(engine, principal, number)
    document = seen.version.document
    return render(
        request,
        "console/program/version.html",
        {
            "version": seen.version,
            "in_force": seen.live.version,
            "view": describe_program(page_words(request, seen.program, document), document),
            "changes": changes_between(request, seen.program, seen.live.document, document),
            "text": pretty(document),
        },
        zone=seen.program.settings.timezone,
    )


@router.post("/program/versions/{number}/rollback")
async def roll_back(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_PUBLISH)],
    number: VersionNumber,
) -> Response:
    """Without ``confirm``: what going back to this version changes, asking to confirm.
    With it: publish this version's document again as a new version
    (``POST /v1/program/versions/{n}/publish``); the draft is left alone. The confirmation
    carries the version in force it was shown with: another one in force by now (this
    form sent again, a colleague's change) is refused and nothing is done."""
    form = await form_of(request)
    note = text(form, "note", limit=5000)
    refused: KopilkaError | None = None
    if flag(form, "confirm"):
        seen_in_force = _seen_version(form)
        try:
            body = validated(PublishRequest, {"note": note})
            if seen_in_force is None:
                raise Conflict(
                    "the form lacks what it was shown", field="form", reason="stale_form"
                )
            published = await in_transaction(
                engine,
                principal,
                lambda conn, program: program_service.rollback(
                    conn, program.id, number, clock.now(), body.note, seen_in_force=seen_in_force
                ),
            )
        except (InvalidInput, Conflict) as error:
            refused = error
        else:
            notice = gettext(
                language_of(request),
                "Version %(old)s is in force again as version %(n)s.",
                old=number,
                n=published.version,
            )
            return redirect(request, f"/console/program/versions/{published.version}", notice)
    seen = await _version(engine, principal, number)
    return render(
        request,
        "console/program/rollback.html",
        {
            "version": seen.version,
            "in_force": seen.live.version,
            "changes": changes_between(
                request, seen.program, seen.live.document, seen.version.document
            ),
            "note": note or "",
            "errors": _refusal(request, refused) if refused else {},
        },
        status=refused.status if refused else 200,
        zone=seen.program.settings.timezone,
    )
