"""Admin API of event delivery: a program's parked events and their replay."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_number_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.worker.schemas import ParkedOut, ParkedPage, Replayed
from kopilka.worker.service import worker_service

router = APIRouter(prefix="/v1", tags=["events"])


@router.get("/events/parked", response_model=ParkedPage)
async def parked(
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    consumer: Annotated[str | None, Query(max_length=100)] = None,
) -> ParkedPage:
    """Events a consumer gave up on after its last attempt, oldest first."""
    after = decode_number_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> ParkedPage:
        found = await worker_service.parked(
            conn,
            program_id=program.id,
            consumer=consumer,
            limit=limit,
            after_seq=after,
        )
        items = [
            ParkedOut(
                consumer=p.consumer,
                seq=p.seq,
                event_id=p.event_id,
                member_id=p.member_id,
                type=p.topic,
                attempts=p.attempts,
                last_error=p.last_error,
                parked_at=p.parked_at,
            )
            for p in found
        ]
        next_cursor = encode_cursor(items[-1].seq) if len(items) == limit else None
        return ParkedPage(items=items, next_cursor=next_cursor)

    return await read_only(engine, principal, work)


@router.post("/events/parked/{event_id}/replay", response_model=Replayed)
async def replay(
    event_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
    consumer: Annotated[str | None, Query(max_length=100)] = None,
) -> Replayed:
    """Deliver a parked event again (to every consumer that parked it, or to one)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Replayed:
        count = await worker_service.replay(
            conn, clock.now(), event_id=event_id, consumer=consumer, program_id=program.id
        )
        return Replayed(replayed=count)

    return await in_transaction(engine, principal, work)
