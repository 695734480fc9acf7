"""HTTP routes of a member's side of messaging (till or admin keys): consents, the in-app
inbox and web-push subscriptions."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, next_cursor
from kopilka.messaging.consents import consent_service
from kopilka.messaging.push import PushConfig
from kopilka.messaging.records import MessageRow
from kopilka.messaging.schemas import (
    ConsentChanges,
    ConsentRecordOut,
    Consents,
    ConsentState,
    InboxItem,
    InboxPage,
    PushSubscriptionIn,
    PushSubscriptionOut,
    PushSubscriptions,
)
from kopilka.messaging.service import messaging_service
from kopilka.messaging.subscriptions import subscription_service
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1", tags=["messaging"])
Limit = Annotated[int, Query(ge=1, le=1000)]


# --- a member's consents, inbox and push subscriptions ----------------------------------------


def _consents_out(views: list[Any], history: list[Any]) -> Consents:
    return Consents(
        items=[ConsentState.model_validate(v, from_attributes=True) for v in views],
        history=[ConsentRecordOut.model_validate(h, from_attributes=True) for h in history],
    )


@router.get("/members/{member_id}/consents", response_model=Consents)
async def get_consents(
    member_id: UUID, principal: Annotated[Principal, requires(P.MEMBERS_READ)], engine: EngineDep
) -> Consents:
    """The member's consent per channel and purpose, and every change of it."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Consents:
        return _consents_out(*await consent_service.of(conn, program, member_id))

    return await read_only(engine, principal, work)


@router.post("/members/{member_id}/consents", response_model=Consents)
async def change_consents(
    member_id: UUID,
    body: ConsentChanges,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> Consents:
    """Grant or withdraw consents, with their source and the version of the consent text.
    Marketing e-mail waits for the member to confirm the address (double opt-in) unless
    ``confirmed``."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Consents:
        now = clock.now()
        await consent_service.change(conn, program, member_id, body.changes, now, confirm_at=now)
        return _consents_out(*await consent_service.of(conn, program, member_id))

    return await in_transaction(engine, principal, work)


def _inbox_item(row: MessageRow) -> InboxItem:
    return InboxItem(
        id=row.id,
        kind=row.kind,
        title=row.subject,
        body=row.body,
        link=row.link,
        created_at=row.created_at,
        read_at=row.read_at,
    )


@router.get("/members/{member_id}/messages", response_model=InboxPage)
async def inbox(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
    limit: Limit = 50,
    cursor: str | None = None,
    unread: bool = False,
) -> InboxPage:
    """The member's in-app inbox, newest first."""
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> InboxPage:
        rows = await messaging_service.inbox(
            conn, program, member_id, limit=limit, before=before, unread=unread
        )
        return InboxPage(
            items=[_inbox_item(r) for r in rows],
            unread=await messaging_service.unread(conn, program, member_id),
            next_cursor=next_cursor(rows, limit),
        )

    return await read_only(engine, principal, work)


@router.post("/members/{member_id}/messages/{message_id}/read", response_model=InboxItem)
async def mark_read(
    member_id: UUID,
    message_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> InboxItem:
    async def work(conn: AsyncConnection, program: ProgramContext) -> InboxItem:
        row = await messaging_service.mark_read(conn, program, member_id, message_id, clock.now())
        return _inbox_item(row)

    return await in_transaction(engine, principal, work)


@router.get("/members/{member_id}/push-subscriptions", response_model=PushSubscriptions)
async def list_subscriptions(
    member_id: UUID,
    request: Request,
    principal: Annotated[Principal, requires(P.MEMBERS_READ)],
    engine: EngineDep,
) -> PushSubscriptions:
    """The member's browsers, and the public key a new one subscribes with."""
    push = PushConfig.from_settings(request.app.state.settings)

    async def work(conn: AsyncConnection, program: ProgramContext) -> PushSubscriptions:
        rows = await subscription_service.of(conn, program, member_id)
        return PushSubscriptions(
            items=[PushSubscriptionOut.model_validate(r, from_attributes=True) for r in rows],
            public_key=push.public_key if push else None,
        )

    return await read_only(engine, principal, work)


@router.post(
    "/members/{member_id}/push-subscriptions", status_code=201, response_model=PushSubscriptionOut
)
async def add_subscription(
    member_id: UUID,
    body: PushSubscriptionIn,
    request: Request,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> PushSubscriptionOut:
    """A browser's subscription (``PushSubscription.toJSON()``); the same endpoint again
    replaces its keys. The endpoint must be an https URL of a public host."""
    allow_private = request.app.state.settings.push_allow_private_endpoints

    async def work(conn: AsyncConnection, program: ProgramContext) -> PushSubscriptionOut:
        row = await subscription_service.add(
            conn, program, member_id, body, clock.now(), allow_private=allow_private
        )
        return PushSubscriptionOut.model_validate(row, from_attributes=True)

    return await in_transaction(engine, principal, work)


@router.delete(
    "/members/{member_id}/push-subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
)
async def remove_subscription(
    member_id: UUID,
    subscription_id: UUID,
    principal: Annotated[Principal, requires(P.MEMBERS_WRITE)],
    engine: EngineDep,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        await subscription_service.remove(conn, program, member_id, subscription_id)

    await in_transaction(engine, principal, work)
    return Response(status_code=204)
