"""Console pages: analytics — the RFM grid of scored members (the other analytics pages
live in the modules named in ``ANALYTICS_PAGES``' comments)."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.analytics.rfm import RfmGrid, rfm_service
from kopilka.crm.domain import RfmGroup
from kopilka.http import EngineDep, read_only
from kopilka.programs.service import ProgramContext
from kopilka.web.console.access import console_page
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import render

router = APIRouter(prefix="/console/analytics", include_in_schema=False)


def _(text: str) -> str:
    """Marks a label for the catalogue; the template translates it."""
    return text


# The named groups as the segment builder words them (the same catalogue texts).
GROUP_LABELS = {
    RfmGroup.CHAMPIONS: _("champions"),
    RfmGroup.LOYAL: _("loyal"),
    RfmGroup.POTENTIAL_LOYALISTS: _("potential loyalists"),
    RfmGroup.NEW: _("new"),
    RfmGroup.PROMISING: _("promising"),
    RfmGroup.NEED_ATTENTION: _("need attention"),
    RfmGroup.ABOUT_TO_SLEEP: _("about to sleep"),
    RfmGroup.AT_RISK: _("at risk"),
    RfmGroup.CANT_LOSE_THEM: _("can't lose them"),
    RfmGroup.HIBERNATING: _("hibernating"),
    RfmGroup.LOST: _("lost"),
}

# Shades of a grid cell: its members as a share of the fullest cell, in six steps, so the
# grid reads as a heat map without inline styles (the Content-Security-Policy forbids them).
HEAT_STEPS = 5


def heat(members: int, fullest: int) -> int:
    """0 for an empty cell, else 1–5 by the cell's share of the fullest one."""
    if members <= 0 or fullest <= 0:
        return 0
    return max(1, -(-HEAT_STEPS * members // fullest))


@router.get("/rfm")
async def rfm_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """Scored members by recency (columns) and frequency (rows), and per named group."""

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[RfmGrid, ProgramContext]:
        return await rfm_service.grid(conn, program), program

    grid, program = await read_only(engine, principal, work)
    zone = program.settings.timezone
    fullest = max((c.members for row in grid.rows for c in row), default=0)
    fmt = Formats(language_of(request), zone)
    return render(
        request,
        "console/analytics/rfm.html",
        {
            "grid": grid,
            "heat": lambda members: heat(members, fullest),
            "labels": GROUP_LABELS,
            "money_currency": program.settings.money_currency,
            "fmt": fmt,
        },
        zone=zone,
    )
