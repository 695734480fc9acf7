"""Console pages: analytics — liability and breakage (what the program owes in points and
what it can expect never to pay), and experiments with their honest return on investment
(the rules' A/B arms and the broadcasts' holdouts)."""

from datetime import UTC, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.analytics.experiment_service import (
    ExperimentInfo,
    ExperimentReport,
    experiment_service,
)
from kopilka.analytics.liability_service import LiabilityReport, liability_service
from kopilka.http import EngineDep, read_only
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.web.charts import Point, bar_chart
from kopilka.web.console.access import console_page
from kopilka.web.forms import query_day
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, render

router = APIRouter(prefix="/console/analytics", include_in_schema=False)


def _(text: str) -> str:
    """Marks a text for the catalogue; the template translates it."""
    return text


# What each warning of an experiment's report means, in the page's language (the report's
# own sentences carry the numbers, in English, for the API).
WARNINGS = {
    "no_control": _("There is no control arm to compare with."),
    "too_few_members": _("An arm has fewer members than a fair comparison needs."),
    "too_few_buyers": _("An arm has too few buyers in the window."),
    "window_too_short": _("The window is shorter than two weeks: weekly habits are not covered."),
    "sample_ratio_mismatch": _(
        "Members per arm differ from the configured shares: the split or the data is broken, "
        "do not trust the uplift."
    ),
    "no_pre_period": _("Nobody bought in the pre-period, so CUPED cannot narrow the interval."),
}


@router.get("/liability")
async def liability_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """Outstanding points by expiry month and their value, breakage by earning month, and
    the liability after the expected breakage, per currency."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> LiabilityReport:
        return await liability_service.report(conn, program, clock.now())

    report = await read_only(engine, principal, work)
    language = language_of(request)
    fmt = Formats(language, report.timezone)
    charts = {
        c.currency: bar_chart(
            gettext(language, "Outstanding points by expiry month"),
            [
                Point(m.month or gettext(language, "never"), m.points, fmt.number(m.points))
                for m in c.by_expiry
            ],
        )
        for c in report.currencies
        if c.by_expiry
    }
    return render(
        request,
        "console/analytics/liability.html",
        {"report": report, "charts": charts},
        zone=report.timezone,
    )


@router.get("/experiments")
async def experiments_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """The program's rules experiments and the broadcasts that held an audience back."""

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[list[ExperimentInfo], str]:
        return await experiment_service.experiments(conn, program), program.settings.timezone

    found, zone = await read_only(engine, principal, work)
    return render(request, "console/analytics/experiments.html", {"experiments": found}, zone=zone)


def _day_start(request: Request, name: str, zone: str) -> datetime | None:
    """Midnight, in the program's zone, of the query's ``YYYY-MM-DD`` day ``name``."""
    day = query_day(request, name)
    return None if day is None else datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)


@router.get("/experiments/{key}")
async def experiment_page(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """One experiment's arms, the uplift with its 95 % interval (plain and CUPED), the
    sample-ratio check, the warnings and the return on investment. The query's ``from`` and
    ``to`` (days in the program's zone, ``to`` exclusive) bound the window."""
    start = request.query_params.get("from", "")
    end = request.query_params.get("to", "")

    async def work(conn: AsyncConnection, program: ProgramContext) -> ExperimentReport:
        zone = program.settings.timezone
        return await experiment_service.report(
            conn,
            program,
            key,
            clock.now(),
            start=_day_start(request, "from", zone),
            end=_day_start(request, "to", zone),
        )

    report = await read_only(engine, principal, work)
    return render(
        request,
        "console/analytics/experiment.html",
        {"report": report, "warnings": WARNINGS, "start": start, "end": end},
    )
