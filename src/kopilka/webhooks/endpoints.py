"""HTTP routes of webhooks (admin keys): endpoints, secrets, the delivery log, redelivery
and a test ping."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.webhooks.domain import DeliveryRow, EndpointRow
from kopilka.webhooks.schemas import (
    Attempt,
    Delivery,
    DeliveryDetail,
    DeliveryPage,
    Webhook,
    WebhookCreate,
    WebhookPage,
    WebhookUpdate,
    WebhookWithSecret,
)
from kopilka.webhooks.service import webhook_service

router = APIRouter(prefix="/v1", tags=["webhooks"])
Limit = Annotated[int, Query(ge=1, le=1000)]


def _with_secret(found: EndpointRow) -> WebhookWithSecret:
    return WebhookWithSecret.model_validate(found)


def _allow_private(request: Request) -> bool:
    return bool(request.app.state.settings.webhook_allow_private_urls)


@router.post("/webhooks", status_code=201, response_model=WebhookWithSecret)
async def create_webhook(
    body: WebhookCreate,
    request: Request,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> WebhookWithSecret:
    """A new endpoint. The answer carries its signing secret; it is not shown again. The
    URL must be https to a public host (``KOPILKA_WEBHOOK_ALLOW_PRIVATE_URLS`` allows more)."""
    allow_private = _allow_private(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> WebhookWithSecret:
        created = await webhook_service.create(
            conn, program, body, clock.now(), allow_private=allow_private
        )
        return _with_secret(created)

    return await in_transaction(engine, principal, work)


@router.get("/webhooks", response_model=WebhookPage)
async def list_webhooks(
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
    limit: Limit = 100,
    cursor: str | None = None,
) -> WebhookPage:
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> WebhookPage:
        found = await webhook_service.page(conn, program, limit, after)
        items = [Webhook.model_validate(e) for e in found]
        last = items[-1] if len(items) == limit else None
        return WebhookPage(
            items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
        )

    return await read_only(engine, principal, work)


@router.get("/webhooks/{webhook_id}", response_model=Webhook)
async def get_webhook(
    webhook_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> Webhook:
    async def work(conn: AsyncConnection, program: ProgramContext) -> Webhook:
        return Webhook.model_validate(await webhook_service.get(conn, program, webhook_id))

    return await read_only(engine, principal, work)


@router.patch("/webhooks/{webhook_id}", response_model=Webhook)
async def update_webhook(
    webhook_id: UUID,
    body: WebhookUpdate,
    request: Request,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> Webhook:
    allow_private = _allow_private(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> Webhook:
        found = await webhook_service.update(
            conn, program, webhook_id, body, clock.now(), allow_private=allow_private
        )
        return Webhook.model_validate(found)

    return await in_transaction(engine, principal, work)


@router.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response)
async def delete_webhook(
    webhook_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> Response:
    """The endpoint and its delivery log."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        await webhook_service.delete(conn, program, webhook_id)

    await in_transaction(engine, principal, work)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/rotate-secret", response_model=WebhookWithSecret)
async def rotate_secret(
    webhook_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> WebhookWithSecret:
    """A new signing secret, shown once; every message from now on is signed with it."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> WebhookWithSecret:
        return _with_secret(await webhook_service.rotate(conn, program, webhook_id, clock.now()))

    return await in_transaction(engine, principal, work)


@router.post("/webhooks/{webhook_id}/ping", status_code=202, response_model=Delivery)
async def ping(
    webhook_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> Delivery:
    """Queue a ``webhook.ping`` message; the worker sends it and its log shows the answer."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Delivery:
        return Delivery.model_validate(
            await webhook_service.ping(conn, program, webhook_id, clock.now())
        )

    return await in_transaction(engine, principal, work)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    webhook_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
    limit: Limit = 100,
    cursor: str | None = None,
    status: Literal["pending", "delivered", "failed"] | None = None,
) -> DeliveryPage:
    """The endpoint's deliveries, newest first."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> DeliveryPage:
        found = await webhook_service.deliveries(conn, program, webhook_id, limit, after, status)
        items = [Delivery.model_validate(d) for d in found]
        last = items[-1] if len(items) == limit else None
        return DeliveryPage(
            items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
        )

    return await read_only(engine, principal, work)


def _detail(found: DeliveryRow, log: list[Attempt]) -> DeliveryDetail:
    return DeliveryDetail.model_validate(
        {**Delivery.model_validate(found).model_dump(), "body": found.body, "log": log}
    )


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryDetail)
async def get_delivery(
    webhook_id: UUID,
    delivery_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> DeliveryDetail:
    """One delivery with its body and every attempt."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> DeliveryDetail:
        found, attempts = await webhook_service.delivery(conn, program, webhook_id, delivery_id)
        return _detail(found, [Attempt.model_validate(a) for a in attempts])

    return await read_only(engine, principal, work)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Delivery,
)
async def redeliver(
    webhook_id: UUID,
    delivery_id: UUID,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> Delivery:
    """Send the delivery again as soon as the worker can, with a fresh retry schedule."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Delivery:
        found = await webhook_service.redeliver(conn, program, webhook_id, delivery_id, clock.now())
        return Delivery.model_validate(found)

    return await in_transaction(engine, principal, work)
