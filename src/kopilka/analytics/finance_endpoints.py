"""HTTP routes of analytics: liability and breakage (and its daily history), experiments and
their return on investment."""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.analytics.experiment_service import experiment_service
from kopilka.analytics.finance_schemas import (
    ExperimentInfoOut,
    ExperimentList,
    ExperimentOut,
    LiabilityHistoryOut,
    LiabilityOut,
)
from kopilka.analytics.liability import BREAKAGE_COHORTS
from kopilka.analytics.liability_service import MAX_COHORTS, liability_service
from kopilka.http import EngineDep, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.types import Day, Instant
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1", tags=["analytics"])


@router.get("/analytics/liability", response_model=LiabilityOut)
async def liability(
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)],
    engine: EngineDep,
    cohorts: Annotated[int, Query(ge=1, le=MAX_COHORTS)] = BREAKAGE_COHORTS,
) -> LiabilityOut:
    """Outstanding points per currency by expiry month and their value, breakage by earning
    month, the breakage expected from the latest ``cohorts`` mature months and the
    liability after it (``docs/analytics.md``)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> LiabilityOut:
        report = await liability_service.report(conn, program, clock.now(), cohorts=cohorts)
        return LiabilityOut.model_validate(report)

    return await read_only(engine, principal, work, snapshot=True)


@router.get("/analytics/liability/history", response_model=LiabilityHistoryOut)
async def liability_history(
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)],
    engine: EngineDep,
    start: Annotated[Day, Query(alias="from", description="First day (program's time zone).")],
    end: Annotated[Day, Query(alias="to", description="Last day, included.")],
    currency: Annotated[
        str | None,
        Query(min_length=1, max_length=32, description="One currency; default: every one."),
    ] = None,
) -> LiabilityHistoryOut:
    """The daily liability snapshots of the days ``from``..``to`` (at most 1,830): per day
    and currency, the outstanding points, their value, the expected breakage and the
    liability after it, as the daily job worked them out."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> LiabilityHistoryOut:
        history = await liability_service.history(conn, program, start, end, currency)
        return LiabilityHistoryOut.model_validate(history)

    return await read_only(engine, principal, work)


@router.get("/analytics/experiments", response_model=ExperimentList)
async def experiments(
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)], engine: EngineDep
) -> ExperimentList:
    """The program's rules experiments and the broadcasts that held part of their audience
    back, each with its key for the report."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ExperimentList:
        found = await experiment_service.experiments(conn, program)
        return ExperimentList(items=[ExperimentInfoOut.model_validate(e) for e in found])

    return await read_only(engine, principal, work)


@router.get("/analytics/experiments/{key}", response_model=ExperimentOut)
async def experiment(
    key: Annotated[str, Path(min_length=1, max_length=100)],
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)],
    engine: EngineDep,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
) -> ExperimentOut:
    """Each arm's members, buyers, purchases, revenue per member, visits, average check and
    points cost; each arm's uplift over the control with 95 % intervals (plain and CUPED),
    the sample-ratio check, minimum-data warnings and the return on investment, over
    [from, to) (default: from the experiment's start to now)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ExperimentOut:
        report = await experiment_service.report(
            conn, program, key, clock.now(), start=start, end=end
        )
        return ExperimentOut.model_validate(report)

    return await read_only(engine, principal, work, snapshot=True)
