"""HTTP routes of segments: parse, one service call, schema."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.segments.export import members_csv
from kopilka.segments.schemas import (
    CountResult,
    ListResult,
    ListUpload,
    MemberSegments,
    MembersPage,
    Preview,
    PreviewResult,
    RefreshResult,
    SegmentCreate,
    SegmentList,
    SegmentOut,
    SegmentUpdate,
)
from kopilka.segments.service import segment_service

router = APIRouter(prefix="/v1", tags=["segments"])


def _after(cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    try:
        return UUID(cursor)
    except ValueError:
        raise InvalidInput("cursor is not one this API gave out", field="cursor") from None


@router.post("/segments", status_code=201, response_model=SegmentOut)
async def create_segment(
    body: SegmentCreate,
    principal: Annotated[Principal, requires(P.SEGMENTS_MANAGE)],
    engine: EngineDep,
) -> SegmentOut:
    """A dynamic segment is evaluated at once (its members get ``segment.entered``)."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.create(conn, program, body, clock.now()),
    )


@router.get("/segments", response_model=SegmentList)
async def list_segments(
    principal: Annotated[Principal, requires(P.SEGMENTS_READ)],
    engine: EngineDep,
    archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> SegmentList:
    async def page(conn: AsyncConnection, program: ProgramContext) -> SegmentList:
        items = await segment_service.listing(
            conn, program, archived=archived, after=cursor, limit=limit
        )
        return SegmentList(items=items, next_cursor=items[-1].key if len(items) == limit else None)

    return await read_only(engine, principal, page)


@router.post("/segments/preview", response_model=PreviewResult)
async def preview_segment(
    body: Preview,
    principal: Annotated[Principal, requires(P.SEGMENTS_READ)],
    engine: EngineDep,
) -> PreviewResult:
    """Count and a few member ids of a definition; nothing is stored."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: segment_service.preview(conn, program, body.definition, clock.now()),
    )


@router.get("/segments/{key}", response_model=SegmentOut)
async def get_segment(
    key: str, principal: Annotated[Principal, requires(P.SEGMENTS_READ)], engine: EngineDep
) -> SegmentOut:
    return await read_only(
        engine, principal, lambda conn, program: segment_service.get(conn, program, key)
    )


@router.patch("/segments/{key}", response_model=SegmentOut)
async def update_segment(
    key: str,
    body: SegmentUpdate,
    principal: Annotated[Principal, requires(P.SEGMENTS_MANAGE)],
    engine: EngineDep,
) -> SegmentOut:
    """A new definition is a new version, and membership is refreshed at once."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.update(conn, program, key, body, clock.now()),
    )


@router.delete("/segments/{key}", response_model=SegmentOut)
async def archive_segment(
    key: str, principal: Annotated[Principal, requires(P.SEGMENTS_MANAGE)], engine: EngineDep
) -> SegmentOut:
    """Archive: members leave it, the key stays taken."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.archive(conn, program, key, clock.now()),
    )


@router.get("/segments/{key}/count", response_model=CountResult)
async def count_segment(
    key: str, principal: Annotated[Principal, requires(P.SEGMENTS_READ)], engine: EngineDep
) -> CountResult:
    return await read_only(
        engine,
        principal,
        lambda conn, program: segment_service.count(conn, program, key, clock.now()),
    )


@router.get("/segments/{key}/members", response_model=MembersPage)
async def segment_members(
    key: str,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> MembersPage:
    after = _after(cursor)
    return await read_only(
        engine,
        principal,
        lambda conn, program: segment_service.members(
            conn, program, key, after, limit, clock.now()
        ),
    )


@router.post("/segments/{key}/refresh", response_model=RefreshResult)
async def refresh_segment(
    key: str, principal: Annotated[Principal, requires(P.SEGMENTS_MANAGE)], engine: EngineDep
) -> RefreshResult:
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.refresh(conn, program, key, clock.now()),
    )


@router.put("/segments/{key}/list", response_model=ListResult)
async def replace_list(
    key: str,
    body: ListUpload,
    principal: Annotated[Principal, requires(P.SEGMENTS_MANAGE)],
    engine: EngineDep,
) -> ListResult:
    """The static segment's list becomes exactly these members."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.upload(
            conn, program, key, body, clock.now(), replace=True
        ),
    )


@router.post("/segments/{key}/list", response_model=ListResult)
async def change_list(
    key: str,
    body: ListUpload,
    principal: Annotated[Principal, requires(P.SEGMENTS_MANAGE)],
    engine: EngineDep,
) -> ListResult:
    """Add members to (``mode: add``) or remove them from (``remove``) a static list."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.upload(conn, program, key, body, clock.now()),
    )


@router.get("/segments/{key}/export.csv", response_class=Response)
async def export_segment(
    key: str, principal: Annotated[Principal, requires(P.MEMBERS_EXPORT)], engine: EngineDep
) -> Response:
    """Every member of the segment as CSV (id, name): personal data, hence
    ``members.export``."""

    body = await read_only(
        engine,
        principal,
        lambda conn, program: members_csv(conn, program, key, clock.now()),
        snapshot=True,
    )
    return Response(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{key}.csv"'},
    )


@router.get("/members/{member_id}/segments", response_model=MemberSegments, tags=["members"])
async def member_segments(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.SEGMENTS_READ)],
    engine: EngineDep,
) -> MemberSegments:
    return await read_only(
        engine,
        principal,
        lambda conn, program: segment_service.of_member(conn, program, member_id),
    )
