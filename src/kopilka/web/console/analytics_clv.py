"""Console pages: analytics — customer lifetime value and churn: the models as last fitted,
members by churn risk and by CLV, the most valuable and the most valuable at risk (links
to their 360° page for roles that may read members), and the models' validation on a
holdout period with the cumulative tracking plot."""

from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.analytics.clv_schemas import ClvOverview, ValidationOut
from kopilka.analytics.clv_service import clv_service
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
# The holdout the validation form offers first: the last half year.
DEFAULT_HOLDOUT_WEEKS = 26


def _band_label(fmt: Formats, low: int, high: int | None, money: str | None) -> str:
    def shown(value: int) -> str:
        return fmt.money(value, money) if money else fmt.number(value)

    return f"{shown(low)}–{shown(high)}" if high is not None else f"{shown(low)}+"


def _charts(overview: ClvOverview, fmt: Formats, language: str) -> dict[str, Markup]:
    money = overview.money_currency
    return {
        "churn": bar_chart(
            gettext(language, "Members by churn risk (percent)"),
            [
                Point(_band_label(fmt, b.low, b.high, None), b.members, fmt.number(b.members))
                for b in overview.churn_risk_bands
            ],
        ),
        "clv": bar_chart(
            gettext(language, "Members by CLV"),
            [
                Point(_band_label(fmt, b.low, b.high, money), b.members, fmt.number(b.members))
                for b in overview.clv_bands
            ],
        ),
    }


@router.get("/clv")
async def clv_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """The current fit, the bands, the top lists and the validation form."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[ClvOverview, str]:
        return await clv_service.overview(conn, program), program.settings.timezone

    overview, zone = await read_only(engine, principal, work)
    language = language_of(request)
    fmt = Formats(language, zone)
    today = clock.now().astimezone(ZoneInfo(zone)).date()
    return render(
        request,
        "console/analytics/clv.html",
        {
            "overview": overview,
            "charts": _charts(overview, fmt, language),
            "members_visible": principal.can(P.MEMBERS_READ),
            "calibration_end": (today - timedelta(weeks=DEFAULT_HOLDOUT_WEEKS)).isoformat(),
            "holdout_end": today.isoformat(),
        },
        zone=zone,
    )


@router.get("/clv/validation")
async def clv_validation_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.ANALYTICS_READ)],
) -> Response:
    """BG/NBD and Pareto/NBD fitted up to ``calibration_end`` and compared with what
    members bought after it, by calibration frequency and week by week (the plot)."""
    calibration_end = query_day(request, "calibration_end")
    holdout_end = query_day(request, "holdout_end")
    if calibration_end is None:
        raise InvalidInput("give the last day of the calibration period", field="calibration_end")

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[ValidationOut, str]:
        report = await clv_service.validation(
            conn, program, calibration_end, holdout_end, clock.now()
        )
        return report, program.settings.timezone

    report, zone = await read_only(engine, principal, work)
    language = language_of(request)
    return render(
        request,
        "console/analytics/clv_validation.html",
        {"report": report, "plot": _tracking_plot(report, language)},
        zone=zone,
    )


def _tracking_plot(report: ValidationOut, language: str) -> Markup:
    """The cumulative tracking plot (SVG drawn by the lifetime package: imported here, as
    it brings numpy, only when a validation is shown)."""
    from kopilka.analytics.lifetime.plot import tracking_svg
    from kopilka.analytics.lifetime.validation import Tracking

    tracking = report.tracking
    svg = tracking_svg(
        Tracking(
            tracking.periods,
            tracking.actual,
            tracking.expected,
            tracking.calibration_periods,
            tracking.unit_days,
        ),
        title=gettext(language, "Cumulative repeat purchases"),
    )
    # Drawn by our own code from numbers; every text in it is escaped.
    return Markup(svg)
