"""Console pages: analytics — the program's KPIs over a period (as a whole and by store,
month or channel, with charts and a CSV download), the KPIs by tier (the table
participants · active share · average check · conversion · return rate), and retention by
monthly cohort. Every figure is the API's (``GET /v1/analytics/kpis``)."""

import csv
import io
from dataclasses import asdict, fields
from typing import Annotated

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.analytics.kpi_report_service import CohortReport, KpiReport, kpi_report_service
from kopilka.analytics.kpis import GROUPINGS, Grouping, KpiRow
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, read_only
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.web.charts import Point, bar_chart
from kopilka.web.console.access import console_page
from kopilka.web.forms import query_day
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, render

router = APIRouter(prefix="/console/analytics", include_in_schema=False)
# Shades of a retention cell by its share, in tenths (classes heat-0 … heat-5).
RETENTION_STEPS = 5


def _grouping(request: Request) -> Grouping | None:
    value = request.query_params.get("by", "")
    if not value:
        return None
    for grouping in GROUPINGS:
        if grouping == value:
            return grouping
    raise InvalidInput(f"by: one of {', '.join(GROUPINGS)}", field="by")


async def _report(
    request: Request, engine: EngineDep, principal: Principal, by: Grouping | None
) -> tuple[KpiReport, str]:
    start, end = query_day(request, "from"), query_day(request, "to")

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[KpiReport, str]:
        found = await kpi_report_service.kpis(
            conn, program, clock.now(), start=start, end=end, by=by
        )
        return found, program.settings.timezone

    return await read_only(engine, principal, work, snapshot=True)


def _month_charts(report: KpiReport, fmt: Formats, language: str) -> dict[str, Markup]:
    if report.by != "month" or not report.rows:
        return {}
    minor = 10 ** get_currency_precision(report.money_currency)
    rows = report.rows
    return {
        "purchases": bar_chart(
            gettext(language, "Purchases by month"),
            [Point(r.group or "", r.purchases, fmt.number(r.purchases)) for r in rows],
        ),
        "average_check": bar_chart(
            gettext(language, "Average check by month"),
            [
                Point(
                    r.group or "",
                    (r.average_check or 0) / minor,
                    fmt.money(r.average_check, report.money_currency),
                )
                for r in rows
            ],
        ),
    }


@router.get("")
async def kpis_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """The period's KPIs (query ``from``, ``to``, ``by`` = store, month or channel)."""
    by = _grouping(request)
    report, zone = await _report(request, engine, principal, by)
    language = language_of(request)
    fmt = Formats(language, zone)
    return render(
        request,
        "console/analytics/kpis.html",
        {
            "report": report,
            "groupings": [g for g in GROUPINGS if g != "tier"],
            "charts": _month_charts(report, fmt, language),
            "query": request.url.query,
        },
        zone=zone,
    )


@router.get("/kpis.csv")
async def kpis_csv(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """The same figures as a CSV file: the whole period first, then one line per group."""
    report, _zone = await _report(request, engine, principal, _grouping(request))
    return Response(
        kpi_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (f'attachment; filename="kpis-{report.start}-{report.end}.csv"')
        },
    )


def kpi_csv(report: KpiReport) -> str:
    """Every figure of every row; money in minor units, shares as fractions."""
    out = io.StringIO()
    names = [f.name for f in fields(KpiRow)]
    writer = csv.DictWriter(out, fieldnames=["from", "to", *names])
    writer.writeheader()
    for row in [report.total, *report.rows]:
        values = {k: ("" if v is None else v) for k, v in asdict(row).items()}
        writer.writerow({"from": report.start, "to": report.end, **values})
    return out.getvalue()


@router.get("/tiers")
async def tiers_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """KPIs by tier: participants, active share, average check, conversion, return rate."""
    report, zone = await _report(request, engine, principal, "tier")
    return render(request, "console/analytics/tiers.html", {"report": report}, zone=zone)


def retention_heat(share: float | None) -> int:
    """0 for nothing, else 1–5 by the share (every 20 %)."""
    if not share:
        return 0
    return min(RETENTION_STEPS, max(1, int(share * RETENTION_STEPS) + 1))


@router.get("/cohorts")
async def cohorts_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """Retention by monthly cohort (query ``from`` and ``to``: days of the first and the
    last month)."""
    start, end = query_day(request, "from"), query_day(request, "to")

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[CohortReport, str]:
        found = await kpi_report_service.cohorts(conn, program, clock.now(), start=start, end=end)
        return found, program.settings.timezone

    report, zone = await read_only(engine, principal, work, snapshot=True)
    return render(
        request,
        "console/analytics/cohorts.html",
        {"report": report, "heat": retention_heat},
        zone=zone,
    )
