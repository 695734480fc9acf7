"""HTTP routes of members: parse, one service call, schema."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.members import domain
from kopilka.members.schemas import (
    Member,
    MemberRef,
    MemberStatusChange,
    MemberUpdate,
)
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1/members", tags=["members"])


class MemberList(BaseModel):
    items: list[Member]
    next_cursor: str | None = None


def ref_from_query(
    identifier: str | None,
    card: str | None,
    phone: str | None,
    email: str | None,
    external_id: str | None,
) -> MemberRef:
    given = {
        k: v
        for k, v in {
            "card": card,
            "phone": phone,
            "email": email,
            "external_id": external_id,
        }.items()
        if v
    }
    if identifier:
        given[domain.guess_identifier_kind(identifier)] = identifier
    if len(given) != 1:
        raise InvalidInput(
            "give exactly one of identifier, card, phone, email, external_id", field="identifier"
        )
    return MemberRef.model_validate(given)


@router.get("", response_model=MemberList)
async def find_members(
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    identifier: Annotated[
        str | None, Query(description="Card, phone, e-mail or external id")
    ] = None,
    card: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    external_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> MemberList:
    """Look a member up by an identifier, or, without one, page through all members
    (newest first)."""
    if not any((identifier, card, phone, email, external_id)):
        before = decode_cursor(cursor) if cursor else None

        async def page(conn: AsyncConnection, program: ProgramContext) -> MemberList:
            items = await member_service.page(conn, program, limit=limit, before=before)
            last = items[-1] if len(items) == limit else None
            return MemberList(
                items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
            )

        return await read_only(engine, principal, page)
    ref = ref_from_query(identifier, card, phone, email, external_id)

    async def find(conn: AsyncConnection, program: ProgramContext) -> MemberList:
        found = await member_service.resolve_many(conn, program, [ref])
        if found[0] is None:
            return MemberList(items=[])
        return MemberList(items=[await member_service.get(conn, program, found[0][0])])

    return await read_only(engine, principal, find)


@router.get("/{member_id}", response_model=Member)
async def get_member(
    member_id: UUID, principal: Annotated[Principal, requires(P.MEMBERS_READ)], engine: EngineDep
) -> Member:
    return await read_only(
        engine, principal, lambda conn, program: member_service.get(conn, program, member_id)
    )


@router.patch("/{member_id}", response_model=Member)
async def update_member(
    member_id: UUID,
    body: MemberUpdate,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> Member:
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: member_service.update(conn, program, member_id, body, clock.now()),
    )


@router.post("/{member_id}/block", response_model=Member)
async def block_member(
    member_id: UUID,
    body: MemberStatusChange,
    principal: Annotated[Principal, requires(P.MEMBERS_BLOCK)],
    engine: EngineDep,
) -> Member:
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: member_service.set_status(
            conn, program, member_id, "blocked", body.reason, clock.now()
        ),
    )


@router.post("/{member_id}/unblock", response_model=Member)
async def unblock_member(
    member_id: UUID,
    body: MemberStatusChange,
    principal: Annotated[Principal, requires(P.MEMBERS_BLOCK)],
    engine: EngineDep,
) -> Member:
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: member_service.set_status(
            conn, program, member_id, "active", body.reason, clock.now()
        ),
    )
