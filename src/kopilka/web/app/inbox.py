"""App pages: the member's inbox — the messages the program sent to the app (as
``GET /v1/members/{id}/messages``), unread ones marked, and one message opened, which marks
it read (as ``POST .../messages/{id}/read`` does)."""

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, next_cursor
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext
from kopilka.web.app.access import SignedInMember, app_url, member_read, member_transaction
from kopilka.web.app.history import app_page, next_page

router = APIRouter(prefix="/app", include_in_schema=False)
PAGE_SIZE = 20


def safe_link(link: str | None) -> str | None:
    """A message's link if a browser may follow it from the app: a page of the web or of
    this site (never ``javascript:`` or other schemes)."""
    if link and (link.startswith(("https://", "http://")) or link.startswith("/")):
        return None if link.startswith("//") else link
    return None


@router.get("/{slug}/inbox")
async def inbox(
    request: Request, member: SignedInMember, unread: bool = False, cursor: str | None = None
) -> Response:
    """The member's messages, newest first, unread ones marked; ``unread``: only those."""
    before = decode_cursor(cursor) if cursor else None

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        rows = await messaging_service.inbox(
            conn, program, member.member_id, limit=PAGE_SIZE, before=before, unread=unread
        )
        return rows, await messaging_service.unread(conn, program, member.member_id)

    rows, unread_count = await member_read(request, read)
    more = {"unread": "true"} if unread else {}
    return app_page(
        request,
        member,
        "app/inbox/inbox.html",
        {
            "messages": rows,
            "unread": unread,
            "unread_count": unread_count,
            "next_url": next_page(
                app_url(member.slug, "inbox"), next_cursor(rows, PAGE_SIZE), **more
            ),
        },
    )


@router.get("/{slug}/inbox/{message_id}")
async def message(request: Request, member: SignedInMember, message_id: UUID) -> Response:
    """One of the member's messages, opened: opening it marks it read (once; opening it
    again changes nothing). Another member's message is not found."""

    async def open_(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await messaging_service.mark_read(
            conn, program, member.member_id, message_id, clock.now()
        )

    row = await member_transaction(request, open_)
    return app_page(
        request, member, "app/inbox/message.html", {"m": row, "link": safe_link(row.link)}
    )
