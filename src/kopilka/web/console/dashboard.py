"""Console pages: the dashboard — the program at a glance (members, active buyers, the
points issued, redeemed and expired in a period, what the program owes in points,
purchases and the average check by week, members per tier), figures beside their charts.

It is the console's front door: a staff member whose role may not read analytics is sent
on to the first section their role can see.
"""

from datetime import date

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.analytics.dashboard import (
    DEFAULT_PERIOD,
    PERIODS,
    Dashboard,
    dashboard_service,
)
from kopilka.http import EngineDep, read_only
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.web.charts import Point, bar_chart
from kopilka.web.console.access import StaffUser
from kopilka.web.console.navigation import console_nav
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
# A week on a chart's axis, short enough for twelve of them: the day and month it starts.
WEEK_LABELS = {"ru": "d.MM", "en": "M/d"}


@router.get("/")
async def dashboard(
    request: Request, engine: EngineDep, principal: StaffUser, days: int = DEFAULT_PERIOD
) -> Response:
    """The program's figures as of now, the points flow over the last ``days`` (7, 30, 90
    or 365)."""
    if not principal.can(P.ANALYTICS_READ):
        sections = console_nav(principal)
        return redirect(request, sections[0].href if sections else "/console/account")

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[Dashboard, str]:
        found = await dashboard_service.dashboard(conn, program, clock.now(), days=days)
        return found, program.settings.timezone

    figures, zone = await read_only(engine, principal, work, snapshot=True)
    language = language_of(request)
    fmt = Formats(language, zone)
    return render(
        request,
        "console/dashboard/index.html",
        {
            "figures": figures,
            "periods": PERIODS,
            "charts": _charts(figures, fmt, language),
        },
        zone=zone,
    )


def _week(fmt: Formats, start: date) -> str:
    return fmt.date(start, WEEK_LABELS.get(fmt.language, "d.MM"))


def _charts(figures: Dashboard, fmt: Formats, language: str) -> dict[str, Markup]:
    """The dashboard's SVG charts (their numbers are in the tables beside them)."""
    currency = figures.money_currency
    minor = 10 ** get_currency_precision(currency)  # the chart's axis is in major units
    weeks = figures.weeks
    charts = {
        "purchases": bar_chart(
            gettext(language, "Purchases by week"),
            [Point(_week(fmt, w.start), w.purchases, fmt.number(w.purchases)) for w in weeks],
        ),
        "average_check": bar_chart(
            gettext(language, "Average check by week"),
            [
                Point(
                    _week(fmt, w.start),
                    (w.average_check or 0) / minor,
                    fmt.money(w.average_check, currency),
                )
                for w in weeks
            ],
        ),
    }
    if figures.tiers is not None:
        charts["tiers"] = bar_chart(
            gettext(language, "Members per tier"),
            [Point(t.name, t.members, fmt.number(t.members)) for t in figures.tiers],
        )
    return charts
