"""HTTP routes of journeys: parse, one service call, schema."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.journeys.domain import KEY_PATTERN, JourneyStatus
from kopilka.journeys.dryrun_service import dry_run_service
from kopilka.journeys.schemas import (
    DryRunDocument,
    DryRunOut,
    DryRunRange,
    JourneyCreate,
    JourneyDraft,
    JourneyList,
    JourneyOut,
    JourneyStatsOut,
    RunDetail,
    RunOut,
    RunPage,
    StepTaken,
)
from kopilka.journeys.service import MAX_JOURNEYS_PAGE, journey_service
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_key_cursor, encode_cursor
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1", tags=["journeys"])

Key = Annotated[str, Path(pattern=KEY_PATTERN)]
Reader = Annotated[Principal, requires(P.MESSAGES_READ)]
Manager = Annotated[Principal, requires(P.MESSAGES_SEND)]


def kept_days(request: Request) -> int:
    """How many days the outbox keeps delivered events (0: every one): where a dry run
    reads history from."""
    return int(request.app.state.settings.outbox_retention_days)


def _after(cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    try:
        return UUID(cursor)
    except ValueError:
        raise InvalidInput("cursor is not one this API gave out", field="cursor") from None


@router.post("/journeys", status_code=201, response_model=JourneyOut)
async def create_journey(body: JourneyCreate, principal: Manager, engine: EngineDep) -> JourneyOut:
    """A new journey with ``document`` as its draft; nothing runs until it is published."""
    view = await in_transaction(
        engine,
        principal,
        lambda conn, program: journey_service.create(
            conn, program, body.key, body.document, clock.now()
        ),
    )
    return JourneyOut.of(view)


@router.get("/journeys", response_model=JourneyList)
async def list_journeys(
    principal: Reader,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=MAX_JOURNEYS_PAGE)] = 50,
    cursor: str | None = None,
) -> JourneyList:
    """The program's journeys in key order, a page at a time."""
    after = decode_key_cursor(cursor) if cursor else None
    views = await read_only(
        engine,
        principal,
        lambda conn, program: journey_service.listing(conn, program, after=after, limit=limit),
    )
    next_cursor = encode_cursor(views[-1].key) if len(views) == limit else None
    return JourneyList(items=[JourneyOut.of(v) for v in views], next_cursor=next_cursor)


@router.post("/journeys/dry-run", response_model=DryRunOut)
async def dry_run_document(
    request: Request, body: DryRunDocument, principal: Reader, engine: EngineDep
) -> DryRunOut:
    """What an unsaved journey document would have done over past days (nothing changes;
    docs/journeys.md, "Dry run")."""
    found = await read_only(
        engine,
        principal,
        lambda conn, program: dry_run_service.of_document(
            conn,
            program,
            body.document,
            (body.start, body.end),
            clock.now(),
            kept_days=kept_days(request),
        ),
        snapshot=True,
    )
    return DryRunOut.of(found)


@router.get("/journeys/{key}", response_model=JourneyOut)
async def get_journey(key: Key, principal: Reader, engine: EngineDep) -> JourneyOut:
    view = await read_only(
        engine, principal, lambda conn, program: journey_service.get(conn, program, key)
    )
    return JourneyOut.of(view)


@router.put("/journeys/{key}/draft", response_model=JourneyOut)
async def put_draft(
    key: Key, body: JourneyDraft, principal: Manager, engine: EngineDep
) -> JourneyOut:
    """Replace the draft (checked; an invalid document is a 422 naming the field)."""
    view = await in_transaction(
        engine,
        principal,
        lambda conn, program: journey_service.put_draft(
            conn, program, key, body.document, clock.now()
        ),
    )
    return JourneyOut.of(view)


@router.post("/journeys/{key}/publish", response_model=JourneyOut)
async def publish_journey(key: Key, principal: Manager, engine: EngineDep) -> JourneyOut:
    """The draft becomes the next version, in force at once; members in flight finish on
    the version they entered on."""
    view = await in_transaction(
        engine,
        principal,
        lambda conn, program: journey_service.publish(conn, program, key, clock.now()),
    )
    return JourneyOut.of(view)


async def _status(
    key: str, status: JourneyStatus, principal: Principal, engine: EngineDep
) -> JourneyOut:
    view = await in_transaction(
        engine,
        principal,
        lambda conn, program: journey_service.set_status(conn, program, key, status, clock.now()),
    )
    return JourneyOut.of(view)


@router.post("/journeys/{key}/pause", response_model=JourneyOut)
async def pause_journey(key: Key, principal: Manager, engine: EngineDep) -> JourneyOut:
    """No member enters and no run moves until it is resumed."""
    return await _status(key, JourneyStatus.PAUSED, principal, engine)


@router.post("/journeys/{key}/resume", response_model=JourneyOut)
async def resume_journey(key: Key, principal: Manager, engine: EngineDep) -> JourneyOut:
    return await _status(key, JourneyStatus.ACTIVE, principal, engine)


@router.post("/journeys/{key}/archive", response_model=JourneyOut)
async def archive_journey(key: Key, principal: Manager, engine: EngineDep) -> JourneyOut:
    return await _status(key, JourneyStatus.ARCHIVED, principal, engine)


@router.post("/journeys/{key}/dry-run", response_model=DryRunOut)
async def dry_run_journey(
    request: Request,
    key: Key,
    principal: Reader,
    engine: EngineDep,
    body: DryRunRange | None = None,
) -> DryRunOut:
    """What the journey (its draft, else the version in force) would have done over past
    days: entrants, holdouts, the runs reaching each step, messages, points and their
    cost, coupons and offers. Nothing changes (docs/journeys.md, "Dry run")."""
    span = body or DryRunRange()
    found = await read_only(
        engine,
        principal,
        lambda conn, program: dry_run_service.of_journey(
            conn,
            program,
            key,
            (span.start, span.end),
            clock.now(),
            kept_days=kept_days(request),
        ),
        snapshot=True,
    )
    return DryRunOut.of(found)


@router.get("/journeys/{key}/stats", response_model=JourneyStatsOut)
async def journey_stats(key: Key, principal: Reader, engine: EngineDep) -> JourneyStatsOut:
    """Per step of the version in force (and of earlier versions under theirs): taken,
    outcomes, runs at it now; per journey: conversion of the treated against the holdout,
    the cost of its steps and the return on it (docs/journeys.md, "Cost and ROI")."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> JourneyStatsOut:
        now = clock.now()
        stats = await journey_service.stats(conn, program, key)
        cost, returned = await journey_service.returns(conn, program, key, now)
        return JourneyStatsOut.of(stats, cost, returned)

    return await read_only(engine, principal, work, snapshot=True)


@router.get("/journeys/{key}/runs", response_model=RunPage)
async def journey_runs(
    key: Key,
    principal: Reader,
    engine: EngineDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: str | None = None,
) -> RunPage:
    after = _after(cursor)
    runs = await read_only(
        engine,
        principal,
        lambda conn, program: journey_service.runs(conn, program, key, after, limit, status),
    )
    next_cursor = str(runs[-1].id) if len(runs) == limit else None
    return RunPage(items=[RunOut.of(r) for r in runs], next_cursor=next_cursor)


@router.get("/journeys/{key}/runs/{run_id}", response_model=RunDetail)
async def journey_run(key: Key, run_id: UUID, principal: Reader, engine: EngineDep) -> RunDetail:
    run, steps = await read_only(
        engine,
        principal,
        lambda conn, program: journey_service.run_steps(conn, program, key, run_id),
    )
    return RunDetail(run=RunOut.of(run), steps=[StepTaken(**s) for s in steps])
