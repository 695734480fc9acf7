"""HTTP routes of the customer 360: a member's timeline and purchases."""

from dataclasses import asdict
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.customers.domain import Cursor, ItemType
from kopilka.customers.merges import merge_service
from kopilka.customers.schemas import (
    MemberPurchase,
    MemberPurchasePage,
    MergeOut,
    MergeRequest,
    TimelineItemOut,
    TimelinePage,
)
from kopilka.customers.service import customer_service
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import (
    decode_cursor,
    decode_key_cursor,
    decode_tagged_cursor,
    encode_cursor,
    encode_tagged_cursor,
)
from kopilka.members.person import person_service
from kopilka.members.schemas import DuplicatePage
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1/members", tags=["customer 360"])
Limit = Annotated[int, Query(ge=1, le=200)]
Reader = Annotated[Principal, requires(P.MEMBERS_READ)]


@router.get("/{member_id}/timeline", response_model=TimelinePage)
async def member_timeline(
    member_id: UUID,
    principal: Reader,
    engine: EngineDep,
    type: Annotated[
        list[ItemType] | None, Query(description="Only these kinds (repeat the parameter).")
    ] = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> TimelinePage:
    """Everything that happened to the member, newest first: purchases and returns, points
    movements, tier changes, messages, consent changes, interactions, tickets and feedback."""
    after = Cursor(*decode_tagged_cursor(cursor)) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> TimelinePage:
        items = await customer_service.timeline(
            conn, program, member_id, types=type, cursor=after, limit=limit, principal=principal
        )
        last = items[-1] if len(items) == limit else None
        return TimelinePage(
            items=[
                TimelineItemOut(at=i.at, type=i.type, id=i.id, summary=i.summary, data=i.data)
                for i in items
            ],
            next_cursor=encode_tagged_cursor(last.at, str(last.type), last.id) if last else None,
        )

    return await read_only(engine, principal, work)


@router.get("/{member_id}/purchases", response_model=MemberPurchasePage)
async def member_purchases(
    member_id: UUID,
    principal: Reader,
    engine: EngineDep,
    limit: Limit = 50,
    cursor: str | None = None,
) -> MemberPurchasePage:
    """The member's purchases, newest first, each with its lines, what it earned and what
    returns took back."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberPurchasePage:
        found = await customer_service.purchases(
            conn, program, member_id, before=before, limit=limit
        )
        last = found[-1] if len(found) == limit else None
        return MemberPurchasePage(
            items=[MemberPurchase.model_validate(asdict(p)) for p in found],
            next_cursor=encode_cursor(last.occurred_at, last.id) if last else None,
        )

    return await read_only(engine, principal, work)


@router.get("/duplicates", response_model=DuplicatePage)
async def duplicates(
    principal: Reader,
    engine: EngineDep,
    reason: Annotated[
        Literal["name_birthday", "email"],
        Query(description="`name_birthday`: the same name and birthday; `email`: one mailbox."),
    ] = "name_birthday",
    limit: Limit = 50,
    cursor: str | None = None,
) -> DuplicatePage:
    """Groups of profiles that likely belong to one person (phones and e-mails are unique
    identifiers, so two profiles never share one exactly)."""
    after = decode_key_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> DuplicatePage:
        groups = await person_service.duplicates(conn, program, reason, after=after, limit=limit)
        last = groups[-1].key if len(groups) == limit else None
        return DuplicatePage(items=groups, next_cursor=encode_cursor(last) if last else None)

    return await read_only(engine, principal, work)


@router.post("/{member_id}/merge", response_model=MergeOut)
async def merge_members(
    member_id: UUID,
    body: MergeRequest,
    principal: Annotated[Principal, requires(P.MEMBERS_MERGE)],
    engine: EngineDep,
) -> MergeOut:
    """Merge another profile of the same person into this one: identifiers, points (lot
    by lot through the ledger), purchases and the rest move here; the higher tier and the
    stricter consents stay; the merged id answers with a pointer here. A retry answers
    ``already_merged``."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> MergeOut:
        result = await merge_service.merge(
            conn, program, member_id, body.merged, body.reason, clock.now()
        )
        return MergeOut.model_validate(asdict(result))

    return await in_transaction(engine, principal, work)
