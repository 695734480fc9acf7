"""HTTP routes of API keys: list and revoke (admin scope). Keys are created with
``kopilka keys create``: a secret is never sent over the API."""

from dataclasses import asdict
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.apikeys.schemas import ApiKeyOut, ApiKeyPage
from kopilka.apikeys.service import api_key_service
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


@router.get("", response_model=ApiKeyPage)
async def list_api_keys(
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
) -> ApiKeyPage:
    """The program's keys, oldest first: name, prefix, scopes, when created and revoked."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> ApiKeyPage:
        keys = await api_key_service.page(
            conn, program.id, limit=limit, after=after, include_revoked=include_revoked
        )
        more = len(keys) == limit
        return ApiKeyPage(
            items=[ApiKeyOut.model_validate(asdict(key)) for key in keys],
            next_cursor=encode_cursor(keys[-1].created_at, keys[-1].id) if more else None,
        )

    return await read_only(engine, principal, work)


@router.post("/{key_id}/revoke", response_model=ApiKeyOut)
async def revoke_api_key(
    key_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> ApiKeyOut:
    """Revoke a key: from the moment this answers, no request with it is served (by any
    process). Revoking a revoked key changes nothing; 404 for a key of another program."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> ApiKeyOut:
        key = await api_key_service.revoke(conn, program.id, key_id, clock.now())
        return ApiKeyOut.model_validate(asdict(key))

    return await in_transaction(engine, principal, work)


@router.delete("/{key_id}", response_model=ApiKeyOut)
async def delete_api_key(
    key_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> ApiKeyOut:
    """The same as ``POST /v1/api-keys/{id}/revoke``: the key's row stays, revoked."""
    return await revoke_api_key(key_id, principal, engine)
