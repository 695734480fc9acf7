"""HTTP routes of analytics: customer-lifetime models, members' predictions and their validation."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.analytics.clv_schemas import ClvOverview, FitOut, MemberClv, ValidationOut
from kopilka.analytics.clv_service import TOP_LIMIT, clv_service
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.types import Day

router = APIRouter(prefix="/v1", tags=["analytics"])


@router.get("/analytics/clv", response_model=ClvOverview)
async def clv_overview(
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=TOP_LIMIT)] = 10,
) -> ClvOverview:
    """The fit the members' predictions come from (models, parameters, log-likelihoods,
    when, on how many members) and the last refit's outcome; members per churn-risk and
    CLV band; the ``limit`` members with the highest CLV and the at-risk ones with the most
    CLV left (``docs/analytics.md``)."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: clv_service.overview(conn, program, limit=limit),
        snapshot=True,
    )


@router.post("/analytics/clv/refit", response_model=FitOut)
async def refit_clv(
    principal: Annotated[Principal, requires(P.PROGRAM_PUBLISH)], engine: EngineDep
) -> FitOut:
    """Fit the models now on the purchase history and replace every member's predictions
    (the worker does this weekly). A history too thin for a fit answers 200 with status
    ``skipped`` and the reason; the previous predictions then stay."""
    return await in_transaction(
        engine, principal, lambda conn, program: clv_service.refit(conn, program, clock.now())
    )


@router.get("/analytics/clv/validation", response_model=ValidationOut)
async def clv_validation(
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)],
    engine: EngineDep,
    calibration_end: Day,
    holdout_end: Day | None = None,
) -> ValidationOut:
    """BG/NBD and Pareto/NBD fitted on the purchases up to ``calibration_end`` and compared
    with what members did after it, up to ``holdout_end`` (default: today): per calibration
    frequency, and week by week."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: clv_service.validation(
            conn, program, calibration_end, holdout_end, clock.now()
        ),
        snapshot=True,
    )


@router.get("/members/{member_id}/clv", response_model=MemberClv, tags=["members"])
async def member_clv(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
) -> MemberClv:
    """The member's predictions from the program's current fit: P(alive), churn risk,
    expected purchases over the CLV horizon, expected spend per purchase, CLV; all null
    with the reason when the member has none."""
    return await read_only(
        engine, principal, lambda conn, program: clv_service.member(conn, program, member_id)
    )
