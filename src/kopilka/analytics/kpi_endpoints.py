"""HTTP routes of analytics: the program's KPIs and retention by monthly cohort
(``docs/analytics.md``)."""

from typing import Annotated

from fastapi import APIRouter, Query

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.analytics.kpi_report_service import CohortReport, KpiReport, kpi_report_service
from kopilka.analytics.kpis import Grouping
from kopilka.http import EngineDep, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.types import Day

router = APIRouter(prefix="/v1", tags=["analytics"])

From = Annotated[
    Day | None,
    Query(
        alias="from",
        description="First day (the program's time zone); default: 29 days before `to`.",
    ),
]
To = Annotated[Day | None, Query(alias="to", description="Last day, included; default: today.")]


@router.get("/analytics/kpis", response_model=KpiReport)
async def program_kpis(
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)],
    engine: EngineDep,
    start: From = None,
    end: To = None,
    by: Annotated[
        Grouping | None, Query(description="One row per tier, store, month or channel.")
    ] = None,
) -> KpiReport:
    """The program's KPIs over a period: participants, activity, checks of members and of
    non-members, conversion, repeat purchases, returns, points and their cost, the
    liability now; as a whole and, with ``by``, per group."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: kpi_report_service.kpis(
            conn, program, clock.now(), start=start, end=end, by=by
        ),
        snapshot=True,
    )


@router.get("/analytics/kpis/cohorts", response_model=CohortReport)
async def kpi_cohorts(
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)],
    engine: EngineDep,
    start: Annotated[
        Day | None,
        Query(
            alias="from",
            description="A day of the first cohort's month; default: 11 months before `to`'s.",
        ),
    ] = None,
    end: To = None,
) -> CohortReport:
    """Retention by monthly cohort: members by the month of their first purchase, and the
    share of each cohort who bought in each later month of the period."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: kpi_report_service.cohorts(
            conn, program, clock.now(), start=start, end=end
        ),
        snapshot=True,
    )
