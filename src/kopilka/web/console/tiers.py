"""Console pages: the tier ladder of the version in force in plain words (each rung's
requirement and benefits, the window, reviews and downgrades) and how many members hold
each rung. The ladder is part of the program document: it is edited in the draft and
published with the rules."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, read_only
from kopilka.programs.service import ProgramContext
from kopilka.tiers.service import tier_service
from kopilka.web.charts import Point, bar_chart
from kopilka.web.console.access import console_page
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, render
from kopilka.web.words.program_words import describe_ladder
from kopilka.web.words.rule_words import words_for

router = APIRouter(prefix="/console", include_in_schema=False)


@dataclass(frozen=True)
class TiersSeen:
    program: ProgramContext
    counts: dict[str, int]


@router.get("/tiers")
async def tiers_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
) -> Response:
    """The ladder in words and the members on each rung (a chart and its table)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> TiersSeen:
        return TiersSeen(program, await tier_service.members_per_tier(conn, program))

    seen = await read_only(engine, principal, work)
    settings = seen.program.settings
    language = language_of(request)
    fmt = Formats(language, settings.timezone)
    document = settings.model_dump(mode="json")
    ladder = (
        describe_ladder(words_for(language, fmt, document), document["tiers"])
        if settings.tiers is not None
        else None
    )
    names = {level.id: level.name for level in settings.tiers.levels} if settings.tiers else {}
    rows = [(names.get(tier, tier), members) for tier, members in seen.counts.items()]
    chart = (
        bar_chart(
            gettext(language, "Members per tier"),
            [Point(name, members, fmt.number(members)) for name, members in rows],
        )
        if rows
        else None
    )
    return render(
        request,
        "console/tiers/index.html",
        {
            "ladder": ladder,
            "rows": rows,
            "total": sum(members for _, members in rows),
            "chart": chart,
            "version": seen.program.version,
        },
        zone=settings.timezone,
    )
