"""App pages: the member's history — purchases with their lines, what each earned and
spent and what returns took back (as ``GET /v1/members/{id}/purchases``), and every
movement of their points with its reason, and when points expire (as ``/history``)."""

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.customers.service import customer_service
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.ledger.history import movement_history
from kopilka.ledger.service import ledger_service
from kopilka.programs.service import ProgramContext
from kopilka.web.app.access import MemberCaller, SignedInMember, app_url, member_read
from kopilka.web.rendering import render

router = APIRouter(prefix="/app", include_in_schema=False)
PAGE_SIZE = 20
TABS = ("purchases", "points")


def app_page(
    request: Request,
    member: MemberCaller,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """A page of the member's app: what the app layout needs (the program's slug and name),
    the program's settings (currencies) and its time zone for dates."""
    program = member.program
    return render(
        request,
        template,
        {
            "slug": program.slug,
            "program_name": program.name,
            "settings": program.settings,
            **(context or {}),
        },
        status=status,
        zone=program.settings.timezone,
    )


def next_page(path: str, cursor: str | None, **query: str) -> str | None:
    """The address of the next page of a list (None when this one was the last)."""
    if cursor is None:
        return None
    return f"{path}?{urlencode({**query, 'cursor': cursor})}"


@router.get("/{slug}/history")
async def history(
    request: Request, member: SignedInMember, tab: str = "purchases", cursor: str | None = None
) -> Response:
    """The member's purchases, newest first, a page at a time; ``tab=points``: every
    movement of their points instead, with the points expiring next."""
    before = decode_cursor(cursor) if cursor else None
    if tab == "points":
        return await _points(request, member, before)

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await customer_service.purchases(
            conn, program, member.member_id, before=before, limit=PAGE_SIZE
        )

    purchases = await member_read(request, read)
    last = purchases[-1] if len(purchases) == PAGE_SIZE else None
    more = encode_cursor(last.occurred_at, last.id) if last else None
    return app_page(
        request,
        member,
        "app/history/purchases.html",
        {
            "tab": "purchases",
            "tabs": TABS,
            "purchases": purchases,
            "next_url": next_page(app_url(member.slug, "history"), more),
        },
    )


async def _points(
    request: Request, member: MemberCaller, before: tuple[datetime, UUID] | None
) -> Response:
    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        movements = await movement_history.movements(
            conn, program, member.member_id, before=before, limit=PAGE_SIZE
        )
        balances = await ledger_service.balances(conn, program, member.member_id)
        expiring = await ledger_service.next_expiring(conn, member.member_id)
        return movements, balances, expiring

    movements, balances, expiring = await member_read(request, read)
    last = movements[-1] if len(movements) == PAGE_SIZE else None
    more = encode_cursor(last.occurred_at, last.id) if last else None
    return app_page(
        request,
        member,
        "app/history/points.html",
        {
            "tab": "points",
            "tabs": TABS,
            "movements": movements,
            "balances": balances,
            "expiring": expiring,
            "next_url": next_page(app_url(member.slug, "history"), more, tab="points"),
        },
    )
