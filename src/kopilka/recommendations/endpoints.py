"""HTTP routes of recommendations: a member's recommended items, the model's builds and the
items the program does not recommend to everyone."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.recommendations.schemas import (
    AvailabilityIn,
    AvailabilityList,
    AvailabilityOut,
    BuildOut,
    MemberRecommendations,
    ModelOut,
)
from kopilka.recommendations.service import MAX_LIMIT, recommendation_service

router = APIRouter(prefix="/v1", tags=["recommendations"])
SkuPath = Annotated[str, Path(min_length=1, max_length=100)]


@router.get(
    "/members/{member_id}/recommendations",
    response_model=MemberRecommendations,
    tags=["members"],
)
async def member_recommendations(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
) -> MemberRecommendations:
    """Items for the member, each with its reason and score: refills due, items bought with
    their recent ones, popular items of their favourite categories they never bought; out of
    stock items and items kept for other tiers left out (``docs/recommendations.md``)."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: recommendation_service.for_member(
            conn, program, member_id, clock.now(), limit
        ),
    )


@router.get("/recommendations/model", response_model=ModelOut)
async def recommendation_model(
    principal: Annotated[Principal, requires(P.ANALYTICS_READ)], engine: EngineDep
) -> ModelOut:
    """The last build of the item-to-item model: when, on how many members and items."""
    return await read_only(
        engine, principal, lambda conn, program: recommendation_service.model(conn, program)
    )


@router.post("/recommendations/build", response_model=BuildOut)
async def build_recommendations(
    principal: Annotated[Principal, requires(P.PROGRAM_PUBLISH)], engine: EngineDep
) -> BuildOut:
    """Build the model now from every counted purchase and replace the stored one (the
    worker does this daily)."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: recommendation_service.build(conn, program, clock.now()),
    )


@router.get("/recommendations/availability", response_model=AvailabilityList)
async def list_availability(
    principal: Annotated[Principal, requires(P.PROGRAM_READ)], engine: EngineDep
) -> AvailabilityList:
    """Items out of stock or kept for some tiers; any other item may be recommended."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: recommendation_service.availability(conn, program),
    )


@router.put("/recommendations/availability/{sku}", response_model=AvailabilityOut)
async def set_availability(
    sku: SkuPath,
    body: AvailabilityIn,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> AvailabilityOut:
    """Mark an item out of stock (``available: false``) or only for members of some tiers."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> AvailabilityOut:
        return await recommendation_service.set_availability(conn, program, sku, body, clock.now())

    return await in_transaction(engine, principal, work)


@router.delete("/recommendations/availability/{sku}", status_code=204, response_class=Response)
async def delete_availability(
    sku: SkuPath,
    principal: Annotated[Principal, requires(P.CATALOG_MANAGE)],
    engine: EngineDep,
) -> Response:
    """Recommend the item to anyone again."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        await recommendation_service.delete_availability(conn, program, sku)

    await in_transaction(engine, principal, work)
    return Response(status_code=204)
