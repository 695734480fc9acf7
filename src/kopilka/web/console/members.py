"""Console pages: members — the search (by card, phone, e-mail, external id or name) and the
newest members a page at a time, the likely duplicates, and a member's 360° page (its
actions' forms post to ``member_actions``).

Also the one-time keys of the console's forms that must act once however often they are
sent (adjusting points, a broadcast, a ticket's reply): each rendering of such a form
carries a new key, and the action is stored under it."""

import re
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.customers.domain import ItemType
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, read_only
from kopilka.kit.pagination import decode_cursor, decode_key_cursor, encode_cursor
from kopilka.members.person import person_service
from kopilka.members.schemas import DuplicateGroup
from kopilka.members.search import MemberListing, member_search
from kopilka.programs.service import ProgramContext
from kopilka.web.charts import progress_bar
from kopilka.web.console.access import console_page
from kopilka.web.console.member_view import (
    MemberView,
    TimelineAsked,
    load_member_view,
    next_tier_share,
)
from kopilka.web.rendering import gettext, render

router = APIRouter(prefix="/console", include_in_schema=False)
Reader = Annotated[Principal, console_page(P.MEMBERS_READ)]
PAGE_SIZE = 50
DuplicateReason = Literal["name_birthday", "email"]
# What ``new_form_key`` makes (and what a key of the API may hold): a form sending anything
# else was not made by the console.
FORM_KEY = re.compile(r"[A-Za-z0-9_-]{16,100}")


def new_form_key() -> str:
    """A new one-time key for one rendering of a form."""
    return f"console-{uuid.uuid4().hex}"


def form_key(form: FormData, name: str) -> str:
    """The one-time key the form sent in ``name``; a 422 naming it when it is missing or
    not one the console makes: without it, a form sent twice would act twice."""
    raw = form.get(name)
    if not isinstance(raw, str) or not FORM_KEY.fullmatch(raw):
        raise InvalidInput(
            f"{name}: the form lacks its one-time key: open the page again, send it from there",
            field=name,
        )
    return raw


def sent_before(language: str) -> str:
    """What a form says when its key was used already with other values (the page was
    sent, then changed and sent again): the first sending was done; the form shown again
    gets a new key."""
    return gettext(
        language,
        "This form was sent already with other values, and that was done. "
        "To do this as well, send the form again.",
    )


def form_key_again(sent: str | None) -> str:
    """The key for a form shown again (after a refusal): the one it was ``sent`` with
    (nothing was done under it), or a new one if that one was not well formed."""
    return sent if sent is not None and FORM_KEY.fullmatch(sent) else new_form_key()


def page_url(request: Request, **params: str | None) -> str:
    """This page's address with ``params`` changed (its other parameters kept)."""
    url = request.url.include_query_params(**{k: v for k, v in params.items() if v})
    return f"{url.path}?{url.query}"


def timeline_url(member_id: UUID, types: list[ItemType], cursor: str) -> str:
    """The member's page at the timeline's page after ``cursor`` (its filter kept); built
    from the member, not the request, so that it is right after a refused action too."""
    query = urlencode([*(("type", str(t)) for t in types), ("cursor", cursor)])
    return f"/console/members/{member_id}?{query}#timeline"


@router.get("/members")
async def members(
    request: Request,
    engine: EngineDep,
    principal: Reader,
    q: Annotated[str | None, Query(max_length=320)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Find a member by card, phone, e-mail, external id or a part of the name; without a
    search, the newest members a page at a time."""
    searched = (q or "").strip()
    before = decode_cursor(cursor) if cursor and not searched else None

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[list[MemberListing], str]:
        if searched:
            found = await member_search.search(conn, program, searched)
        else:
            found = await member_search.listing(conn, program, limit=PAGE_SIZE, before=before)
        return found, program.settings.timezone

    found, zone = await read_only(engine, principal, work)
    last = found[-1] if not searched and len(found) == PAGE_SIZE else None
    return render(
        request,
        "console/members/index.html",
        {
            "q": searched,
            "found": found,
            "next_url": page_url(request, cursor=encode_cursor(last.created_at, last.id))
            if last
            else None,
        },
        zone=zone,
    )


@router.get("/members/duplicates")
async def duplicates(
    request: Request,
    engine: EngineDep,
    principal: Reader,
    reason: DuplicateReason = "name_birthday",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Groups of profiles that likely belong to one person (the same name and birthday, or
    one mailbox), as ``GET /v1/members/duplicates`` finds them, with a way to merge them
    for those who may."""
    after = decode_key_cursor(cursor) if cursor else None

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[list[DuplicateGroup], str]:
        groups = await person_service.duplicates(
            conn, program, reason, after=after, limit=PAGE_SIZE
        )
        return groups, program.settings.timezone

    groups, zone = await read_only(engine, principal, work)
    last = groups[-1].key if len(groups) == PAGE_SIZE else None
    return render(
        request,
        "console/members/duplicates.html",
        {
            "groups": groups,
            "reason": reason,
            "next_url": page_url(request, cursor=encode_cursor(last)) if last else None,
        },
        zone=zone,
    )


@router.get("/members/{member_id}")
async def member(
    request: Request,
    member_id: UUID,
    engine: EngineDep,
    principal: Reader,
    type: Annotated[list[ItemType] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The member's 360° page: profile, points with their lots, tier and progress, the
    timeline (filtered by kind, a page at a time), coupons, rewards, gift cards, tickets,
    consents, segments, facts, likely duplicates, and the actions the reader's role
    allows."""
    return await member_page(
        request, engine, principal, member_id, TimelineAsked(list(type or []), cursor)
    )


async def member_page(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    member_id: UUID,
    asked: TimelineAsked | None = None,
    *,
    errors: dict[str, str] | None = None,
    sent: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The 360° page; after a refused action, with the refusal beside the form's fields
    (``errors``), what was typed kept (``sent``) and ``status`` 422."""
    asked = asked or TimelineAsked([])
    view: MemberView = await read_only(
        engine,
        principal,
        lambda conn, program: load_member_view(conn, program, principal, member_id, asked),
    )
    timeline_next = (
        timeline_url(member_id, asked.types, view.timeline_next) if view.timeline_next else None
    )
    context: dict[str, Any] = {
        "view": view,
        "profile": view.profile,
        "asked": asked,
        "item_types": list(ItemType),
        "timeline_next": timeline_next,
        "tier_share": next_tier_share(view.tier),
        "progress_bar": progress_bar,
        "errors": errors or {},
        "sent": sent or {},
        # A fresh key with every rendering: one submission of the form credits once,
        # however often the browser sends it.
        "adjust_key": form_key_again((sent or {}).get("idempotency_key")),
        "writable": view.profile.status in ("active", "blocked"),
    }
    return render(request, "console/members/member.html", context, status=status, zone=view.zone)
