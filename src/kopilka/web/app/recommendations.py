"""App page: "Recommended for you" — the member's recommended items with the reason for
each, in plain words (``docs/recommendations.md``)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.recommendations.service import recommendation_service
from kopilka.web.app.access import SignedInMember, member_read
from kopilka.web.app.history import app_page

router = APIRouter(prefix="/app", include_in_schema=False)
SHOWN = 10


@router.get("/{slug}/recommended")
async def recommended(request: Request, member: SignedInMember) -> Response:
    """The signed-in member's recommendations; a plain sentence when there are none."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        found = await recommendation_service.for_members(
            conn, program, [member.member_id], clock.now(), SHOWN
        )
        return found.get(member.member_id, [])

    items = await member_read(request, read)
    return app_page(request, member, "app/recommendations/recommended.html", {"items": items})
