"""HTTP routes of stores: parse, one service call, schema."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_key_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.stores.geo import MAX_DISTANCE_M
from kopilka.stores.schemas import (
    ImportResult,
    NearestResult,
    Status,
    Store,
    StoreCreate,
    StoreImport,
    StorePage,
    StoreUpdate,
)
from kopilka.stores.service import store_service

router = APIRouter(prefix="/v1", tags=["stores"])
Tag = Annotated[str | None, Query(min_length=1, max_length=50)]


@router.post("/stores", status_code=201, response_model=Store)
async def create_store(
    body: StoreCreate,
    principal: Annotated[Principal, requires(P.STORES_MANAGE)],
    engine: EngineDep,
) -> Store:
    """A new store; 409 if the code is taken."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: store_service.create(
            conn, program, body, clock.now(), allowed=principal.stores
        ),
    )


@router.get("/stores", response_model=StorePage)
async def list_stores(
    principal: Annotated[Principal, requires(P.STORES_READ)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    region: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    tag: Tag = None,
    status: Status | None = None,
) -> StorePage:
    """The program's stores in code order (a staff member limited to some stores: theirs)."""
    after = decode_key_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> StorePage:
        page = await store_service.page(
            conn,
            program,
            clock.now(),
            limit=limit,
            after=after,
            region=region,
            tag=tag,
            status=status,
            visible=principal.stores,
        )
        last = page.next_cursor
        return StorePage(items=page.items, next_cursor=encode_cursor(last) if last else None)

    return await read_only(engine, principal, work)


@router.get("/stores/nearest", response_model=NearestResult)
async def nearest_stores(
    principal: Annotated[Principal, requires(P.STORES_READ)],
    engine: EngineDep,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="Degrees.")],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="Degrees.")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    radius_m: Annotated[int | None, Query(ge=1, le=round(MAX_DISTANCE_M))] = None,
    open_now: Annotated[bool, Query(description="Only stores open now.")] = False,
    tag: Tag = None,
) -> NearestResult:
    """The stores nearest to a point, nearest first, with their great-circle distance in
    whole metres and whether each is open now in its own time zone."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: store_service.nearest(
            conn,
            program,
            lat,
            lon,
            clock.now(),
            limit=limit,
            radius_m=radius_m,
            tag=tag,
            open_now=open_now,
            visible=principal.stores,
        ),
    )


@router.post("/stores/import", response_model=ImportResult)
async def import_stores(
    body: StoreImport,
    principal: Annotated[Principal, requires(P.STORES_MANAGE)],
    engine: EngineDep,
) -> ImportResult:
    """Create or change stores by code, all or nothing: a JSON list (`stores`) or the text
    of a CSV file (`csv`). Any bad row refuses the whole import with a 422 naming every bad
    row (`errors`: `stores.N.field`, or `csv` with `line` and `column`); otherwise each row's
    outcome: `created`, `updated` or `unchanged`. Importing the same rows again changes
    nothing."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ImportResult:
        now = clock.now()
        if body.csv is not None:
            return await store_service.import_csv(
                conn, program, body.csv, now, dry_run=body.dry_run, allowed=principal.stores
            )
        rows = [(i, s.model_dump(exclude_unset=True)) for i, s in enumerate(body.stores or [])]
        return await store_service.import_rows(
            conn, program, rows, now, dry_run=body.dry_run, allowed=principal.stores
        )

    return await in_transaction(engine, principal, work)


@router.get("/stores/{code}", response_model=Store)
async def get_store(
    code: str, principal: Annotated[Principal, requires(P.STORES_READ)], engine: EngineDep
) -> Store:
    return await read_only(
        engine,
        principal,
        lambda conn, program: store_service.get(
            conn, program, code, now=clock.now(), visible=principal.stores
        ),
    )


@router.patch("/stores/{code}", response_model=Store)
async def update_store(
    code: str,
    body: StoreUpdate,
    principal: Annotated[Principal, requires(P.STORES_MANAGE)],
    engine: EngineDep,
) -> Store:
    """Change some of a store's fields; null clears an optional one. `status: closed`
    closes it for good (`closed_at`); its code stays known to purchases."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: store_service.update(
            conn, program, code, body, clock.now(), visible=principal.stores
        ),
    )
