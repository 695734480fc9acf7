"""HTTP routes of the program document: the version in force, the draft, publishing, history
and rollback. The caller's key names the program."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_number_cursor, encode_cursor
from kopilka.kit.types import INT32_MAX
from kopilka.programs.service import ProgramContext, program_service
from kopilka.programs.version_schemas import (
    Draft,
    ProgramInForce,
    PublishRequest,
    Version,
    VersionPage,
)

router = APIRouter(prefix="/v1/program", tags=["program"])

DOCUMENT_EXAMPLE = {
    "money_currency": "RUB",
    "currencies": [{"code": "points"}],
    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}],
}
DocumentBody = Annotated[
    dict[str, Any],
    Body(
        description="The whole program settings document (see docs/api.md).",
        openapi_examples={"one point per rouble": {"value": DOCUMENT_EXAMPLE}},
    ),
]
VersionNumber = Annotated[int, Path(ge=1, le=INT32_MAX)]


@router.get("", response_model=ProgramInForce)
async def get_program(
    principal: Annotated[Principal, requires(P.PROGRAM_READ)], engine: EngineDep
) -> ProgramInForce:
    """The program and the document of the version in force."""
    return await read_only(
        engine, principal, lambda conn, program: program_service.in_force(conn, program.id)
    )


@router.get("/draft", response_model=Draft)
async def get_draft(
    principal: Annotated[Principal, requires(P.PROGRAM_EDIT)], engine: EngineDep
) -> Draft:
    """The draft; without a stored one, a copy of the version in force (``stored: false``)."""
    return await read_only(
        engine, principal, lambda conn, program: program_service.draft(conn, program.id)
    )


@router.put("/draft", response_model=Draft)
async def put_draft(
    document: DocumentBody,
    principal: Annotated[Principal, requires(P.PROGRAM_EDIT)],
    engine: EngineDep,
) -> Draft:
    """Save the draft. An invalid document is a 422 naming the field and changes nothing."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: program_service.put_draft(conn, program.id, document, clock.now()),
    )


@router.post("/publish", status_code=201, response_model=Version)
async def publish_draft(
    principal: Annotated[Principal, requires(P.PROGRAM_PUBLISH)],
    engine: EngineDep,
    body: Annotated[PublishRequest | None, Body()] = None,
) -> Version:
    """Publish the draft as the next version and put it in force; 409 without a draft."""
    note = body.note if body else None
    notice = body.member_notice if body else None
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: program_service.publish(
            conn, program.id, clock.now(), note, notice=notice
        ),
    )


@router.get("/versions", response_model=VersionPage)
async def list_versions(
    principal: Annotated[Principal, requires(P.PROGRAM_READ)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> VersionPage:
    """Published versions, newest first."""
    before = _version_cursor(cursor)

    async def page(conn: AsyncConnection, program: ProgramContext) -> VersionPage:
        items = await program_service.versions(conn, program.id, limit=limit, before=before)
        more = len(items) == limit
        return VersionPage(
            items=items, next_cursor=encode_cursor(items[-1].version) if more else None
        )

    return await read_only(engine, principal, page)


@router.get("/versions/{version}", response_model=Version)
async def get_version(
    version: VersionNumber,
    principal: Annotated[Principal, requires(P.PROGRAM_READ)],
    engine: EngineDep,
) -> Version:
    """One published version with its document; 404 if the program has no such version."""
    return await read_only(
        engine,
        principal,
        lambda conn, program: program_service.version(conn, program.id, version),
    )


@router.post("/versions/{version}/publish", status_code=201, response_model=Version)
async def roll_back(
    version: VersionNumber,
    principal: Annotated[Principal, requires(P.PROGRAM_PUBLISH)],
    engine: EngineDep,
    body: Annotated[PublishRequest | None, Body()] = None,
) -> Version:
    """Roll back: publish the document of ``version`` again, as a new version (note
    "rollback to vN" unless one is given). The draft is left alone."""
    note = body.note if body else None
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: program_service.rollback(
            conn, program.id, version, clock.now(), note
        ),
    )


def _version_cursor(cursor: str | None) -> int | None:
    """The page cursor is the number of the last version shown."""
    if cursor is None:
        return None
    number = decode_number_cursor(cursor)
    if number > INT32_MAX:
        raise InvalidInput("cursor is not one this API gave out", field="cursor")
    return number
