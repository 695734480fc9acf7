"""Console pages: a journey's runs — a page of them (filtered by status), each linking to
the run's own page with every step it took, its outcome and detail. The same service calls
as ``GET /v1/journeys/{key}/runs…``, with ``messages.read``."""

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, read_only
from kopilka.journeys.domain import RunStatus
from kopilka.journeys.schemas import RunOut, StepTaken
from kopilka.journeys.service import JourneyView, journey_service
from kopilka.programs.service import ProgramContext
from kopilka.web.console.access import console_page
from kopilka.web.console.journey_words import OUTCOMES, RUN_STATUSES
from kopilka.web.rendering import render

router = APIRouter()
PAGE = 50


def _after(cursor: str | None) -> UUID | None:
    if not cursor:
        return None
    try:
        return UUID(cursor)
    except ValueError:
        raise InvalidInput("cursor is not one this page gave out", field="cursor") from None


@router.get("/journeys/{key}/runs")
async def runs_page(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    """The journey's runs, oldest first, a page at a time, of one status or all."""
    after = _after(cursor)
    wanted = status or None

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[JourneyView, list[RunOut], str]:
        view = await journey_service.get(conn, program, key)
        runs = await journey_service.runs(conn, program, key, after, PAGE, wanted)
        return view, [RunOut.of(run) for run in runs], program.settings.timezone

    view, runs, zone = await read_only(engine, principal, work)
    next_url = None
    if len(runs) == PAGE:
        query = {"cursor": str(runs[-1].id), **({"status": wanted} if wanted else {})}
        next_url = f"/console/journeys/{key}/runs?{urlencode(query)}"
    return render(
        request,
        "console/journeys/runs.html",
        {
            "journey": view,
            "runs": runs,
            "status": wanted or "",
            "run_statuses": [(str(s), RUN_STATUSES[s]) for s in RunStatus],
            "labels": RUN_STATUSES,
            "next_url": next_url,
        },
        zone=zone,
    )


@router.get("/journeys/{key}/runs/{run_id}")
async def run_page(
    request: Request,
    key: str,
    run_id: UUID,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MESSAGES_READ)],
) -> Response:
    """One run: its member, version and status, and every step it took in order."""

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[JourneyView, RunOut, list[StepTaken], str]:
        view = await journey_service.get(conn, program, key)
        run, steps = await journey_service.run_steps(conn, program, key, run_id)
        return view, RunOut.of(run), [StepTaken(**s) for s in steps], program.settings.timezone

    view, run, steps, zone = await read_only(engine, principal, work)
    return render(
        request,
        "console/journeys/run.html",
        {
            "journey": view,
            "run": run,
            "steps": steps,
            "labels": RUN_STATUSES,
            "outcomes": OUTCOMES,
        },
        zone=zone,
    )
