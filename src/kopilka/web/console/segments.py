"""Console pages: segments — the list, a segment's page (its conditions in words, its size,
refresh, export, delete), its members, and (from ``segment_builder``) the builder.

Every page calls the segments service as the API's routes do, with the permission each of
them asks: reading segments, managing them, reading members (their names are personal
data, so their page is logged as the API's is), exporting them.
"""

import json
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.segments.export import members_csv
from kopilka.segments.schemas import MembersPage, SegmentOut
from kopilka.segments.service import segment_service
from kopilka.web.console.access import console_page
from kopilka.web.console.segment_builder import router as builder_router
from kopilka.web.console.segment_labels import KIND_LABELS
from kopilka.web.console.segment_words import definition_words
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
# The builder's paths (``/segments/new``, ``/segments/preview``) come before
# ``/segments/{key}``.
router.include_router(builder_router)
PAGE = 50
MEMBERS_PAGE = 50


def _after(value: str | None) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInput("not a page this console gave out", field="after") from None


@router.get("/segments")
async def segments_list(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.SEGMENTS_READ)],
    after: str | None = None,
) -> Response:
    """Every active segment in key order: its kind, its size as last kept, when it was
    last refreshed."""
    items = await read_only(
        engine,
        principal,
        lambda conn, program: segment_service.listing(conn, program, after=after, limit=PAGE),
    )
    next_url = f"/console/segments?after={items[-1].key}" if len(items) == PAGE else None
    return render(
        request,
        "console/segments/list.html",
        {"segments": items, "next_url": next_url, "kinds": KIND_LABELS},
    )


@router.get("/segments/{key}")
async def segment_page(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.SEGMENTS_READ)],
) -> Response:
    """A segment: its conditions in words, its size, and what the staff member may do with
    it (edit, refresh, export, delete)."""

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[SegmentOut, ProgramContext]:
        return await segment_service.get(conn, program, key), program

    segment, program = await read_only(engine, principal, work)
    zone = program.settings.timezone
    words = None
    if segment.definition is not None:
        words = definition_words(
            segment.definition,
            Formats(language_of(request), zone),
            program.settings.money_currency,
            program.settings.points_currency(),
        )
    return render(
        request,
        "console/segments/show.html",
        {
            "segment": segment,
            "words": words,
            "definition": json.dumps(segment.definition, ensure_ascii=False, indent=2),
            "kinds": KIND_LABELS,
        },
        zone=zone,
    )


@router.get("/segments/{key}/members")
async def segment_members(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MEMBERS_READ)],
    after: str | None = None,
) -> Response:
    """A page of the segment's members (who matches now, for a dynamic one), each linked
    to their profile."""
    start = _after(after)

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[SegmentOut, MembersPage]:
        segment = await segment_service.get(conn, program, key)
        page = await segment_service.members(conn, program, key, start, MEMBERS_PAGE, clock.now())
        return segment, page

    segment, page = await read_only(engine, principal, work)
    next_url = (
        f"/console/segments/{key}/members?after={page.next_cursor}" if page.next_cursor else None
    )
    return render(
        request,
        "console/segments/members.html",
        {"segment": segment, "members": page.items, "next_url": next_url, "first": start is None},
    )


@router.post("/segments/{key}/refresh")
async def refresh_segment(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.SEGMENTS_MANAGE)],
) -> Response:
    """Work the membership out again now: who entered, who left."""
    done = await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.refresh(conn, program, key, clock.now()),
    )
    notice = gettext(
        language_of(request),
        "Refreshed. Entered: %(entered)s, left: %(left)s, members now: %(members)s.",
        entered=done.entered,
        left=done.left,
        members=done.members,
    )
    return redirect(request, f"/console/segments/{key}", notice)


@router.post("/segments/{key}/delete")
async def delete_segment(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.SEGMENTS_MANAGE)],
) -> Response:
    """Archive the segment: its members leave it; its key stays taken (rules and
    broadcasts may name it)."""
    gone = await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.archive(conn, program, key, clock.now()),
    )
    notice = gettext(language_of(request), "Segment “%(name)s” deleted.", name=gone.name)
    return redirect(request, "/console/segments", notice)


@router.get("/segments/{key}/export.csv")
async def export_segment(
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MEMBERS_EXPORT)],
) -> Response:
    """Every member of the segment as CSV (member id, name), as the API's export."""
    body = await read_only(
        engine,
        principal,
        lambda conn, program: members_csv(conn, program, key, clock.now()),
        snapshot=True,
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{key}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
