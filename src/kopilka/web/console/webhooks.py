"""Console pages: webhooks — the program's endpoints with their status, creating, editing
and deleting one, a new signing secret (shown once), a test ping, an endpoint's deliveries
and a delivery's attempts with redelivery, as ``/v1/webhooks`` does."""

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.web.console.access import console_page
from kopilka.web.forms import field_errors, flag, form_of, text, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render
from kopilka.webhooks.domain import EndpointRow
from kopilka.webhooks.schemas import (
    Attempt,
    Delivery,
    Webhook,
    WebhookCreate,
    WebhookUpdate,
)
from kopilka.webhooks.service import webhook_service

router = APIRouter(prefix="/console", include_in_schema=False)
Integrator = Annotated[Principal, console_page(P.INTEGRATIONS_MANAGE)]
PAGE_SIZE = 50
DeliveryStatus = Literal["pending", "delivered", "failed"]


def next_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    url = request.url.include_query_params(cursor=cursor)
    return f"{url.path}?{url.query}"


def _allow_private(request: Request) -> bool:
    """``KOPILKA_WEBHOOK_ALLOW_PRIVATE_URLS``: http and private addresses (development)."""
    return bool(request.app.state.settings.webhook_allow_private_urls)


def _cursor(items: list[Any], limit: int) -> str | None:
    last = items[-1] if len(items) == limit else None
    return encode_cursor(last.created_at, last.id) if last else None


# --- the list -------------------------------------------------------------------------------


@router.get("/webhooks")
async def webhooks(
    request: Request,
    engine: EngineDep,
    principal: Integrator,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The program's endpoints, oldest first, each with its status (on, off, disabled
    after failing, failing since)."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[list[Webhook], str]:
        found = await webhook_service.page(conn, program, PAGE_SIZE, after)
        return [Webhook.model_validate(e) for e in found], program.settings.timezone

    items, zone = await read_only(engine, principal, work)
    return render(
        request,
        "console/webhooks/index.html",
        {"webhooks": items, "next_url": next_url(request, _cursor(items, PAGE_SIZE))},
        zone=zone,
    )


# --- creating, editing, deleting ------------------------------------------------------------


def _event_types(form: FormData) -> list[str]:
    """Event types typed one per line or separated by commas (``*`` when none)."""
    raw = text(form, "event_types", limit=12000) or "*"
    return [part.strip() for part in raw.replace(",", "\n").splitlines() if part.strip()]


def _fields(form: FormData) -> dict[str, Any]:
    return {
        "url": text(form, "url", limit=2000) or "",
        "event_types": _event_types(form),
        "description": text(form, "description", limit=500),
        "enabled": flag(form, "enabled"),
    }


def _form_page(
    request: Request,
    hook: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "console/webhooks/form.html",
        {"hook": hook, "errors": errors or {}},
        status=status,
    )


def _secret_page(request: Request, hook: EndpointRow, created: bool) -> Response:
    """The endpoint's signing secret, shown this once (it is never shown again)."""
    return render(
        request,
        "console/webhooks/secret.html",
        {"hook": Webhook.model_validate(hook), "secret": hook.secret, "created": created},
    )


@router.get("/webhooks/new")
async def new_webhook(request: Request, principal: Integrator) -> Response:
    """The form of a new endpoint."""
    blank = {"url": "", "event_types": ["*"], "description": "", "enabled": True}
    return _form_page(request, blank)


@router.post("/webhooks/new")
async def create_webhook(request: Request, engine: EngineDep, principal: Integrator) -> Response:
    """Create an endpoint and show its signing secret, once."""
    form = await form_of(request)
    sent = _fields(form)
    try:
        body = validated(WebhookCreate, sent)
        created = await in_transaction(
            engine,
            principal,
            lambda conn, program: webhook_service.create(
                conn, program, body, clock.now(), allow_private=_allow_private(request)
            ),
        )
    except KopilkaError as exc:
        if exc.status in (401, 403):
            raise
        return _form_page(request, sent, errors=field_errors(exc), status=exc.status)
    return _secret_page(request, created, created=True)


@router.get("/webhooks/{webhook_id}")
async def webhook_page(
    request: Request,
    webhook_id: UUID,
    engine: EngineDep,
    principal: Integrator,
    status: DeliveryStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """An endpoint: its settings (a form), its actions (ping, a new secret, delete) and its
    deliveries, newest first, by status."""
    return await _webhook_page(request, engine, principal, webhook_id, status, cursor)


async def _webhook_page(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    webhook_id: UUID,
    status: str | None = None,
    cursor: str | None = None,
    *,
    errors: dict[str, str] | None = None,
    sent: dict[str, Any] | None = None,
    code: int = 200,
) -> Response:
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        hook = Webhook.model_validate(await webhook_service.get(conn, program, webhook_id))
        found = await webhook_service.deliveries(
            conn, program, webhook_id, PAGE_SIZE, after, status
        )
        return {
            "hook": hook,
            "deliveries": [Delivery.model_validate(d) for d in found],
            "zone": program.settings.timezone,
        }

    found = await read_only(engine, principal, work)
    zone = found.pop("zone")
    hook: Webhook = found["hook"]
    shown = sent or {
        "url": hook.url,
        "event_types": hook.event_types,
        "description": hook.description or "",
        "enabled": hook.enabled,
    }
    return render(
        request,
        "console/webhooks/webhook.html",
        {
            **found,
            "form": shown,
            "status": status or "",
            "errors": errors or {},
            "next_url": next_url(request, _cursor(found["deliveries"], PAGE_SIZE)),
        },
        status=code,
        zone=zone,
    )


@router.post("/webhooks/{webhook_id}/edit")
async def update_webhook(
    request: Request, webhook_id: UUID, engine: EngineDep, principal: Integrator
) -> Response:
    """Save the endpoint's URL, event types, description and whether it is on (turning it
    on clears its failure record and sends what waited)."""
    form = await form_of(request)
    sent = _fields(form)
    try:
        body = validated(WebhookUpdate, sent)
        await in_transaction(
            engine,
            principal,
            lambda conn, program: webhook_service.update(
                conn, program, webhook_id, body, clock.now(), allow_private=_allow_private(request)
            ),
        )
    except KopilkaError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _webhook_page(
            request,
            engine,
            principal,
            webhook_id,
            errors=field_errors(exc),
            sent=sent,
            code=exc.status,
        )
    notice = gettext(language_of(request), "The webhook has been saved.")
    return redirect(request, f"/console/webhooks/{webhook_id}", notice)


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(
    request: Request, webhook_id: UUID, engine: EngineDep, principal: Integrator
) -> Response:
    """Delete the endpoint and its delivery log."""
    await in_transaction(
        engine,
        principal,
        lambda conn, program: webhook_service.delete(conn, program, webhook_id),
    )
    notice = gettext(language_of(request), "The webhook has been deleted.")
    return redirect(request, "/console/webhooks", notice)


@router.post("/webhooks/{webhook_id}/rotate-secret")
async def rotate_secret(
    request: Request, webhook_id: UUID, engine: EngineDep, principal: Integrator
) -> Response:
    """A new signing secret, shown once; messages from now on are signed with it."""
    rotated = await in_transaction(
        engine,
        principal,
        lambda conn, program: webhook_service.rotate(conn, program, webhook_id, clock.now()),
    )
    return _secret_page(request, rotated, created=False)


async def _refused(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    webhook_id: UUID,
    exc: KopilkaError,
) -> Response:
    """The endpoint's page again with the service's refusal (a disabled endpoint)."""
    if exc.status in (401, 403, 404):
        raise exc
    return await _webhook_page(
        request,
        engine,
        principal,
        webhook_id,
        errors={"action": exc.detail},
        code=exc.status,
    )


@router.post("/webhooks/{webhook_id}/ping")
async def ping(
    request: Request, webhook_id: UUID, engine: EngineDep, principal: Integrator
) -> Response:
    """Queue a ``webhook.ping`` message; the worker sends it, and the deliveries show the
    answer."""
    try:
        await in_transaction(
            engine,
            principal,
            lambda conn, program: webhook_service.ping(conn, program, webhook_id, clock.now()),
        )
    except KopilkaError as exc:
        return await _refused(request, engine, principal, webhook_id, exc)
    notice = gettext(language_of(request), "A test message is queued: the worker sends it.")
    return redirect(request, f"/console/webhooks/{webhook_id}", notice)


# --- a delivery -----------------------------------------------------------------------------


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}")
async def delivery_page(
    request: Request,
    webhook_id: UUID,
    delivery_id: UUID,
    engine: EngineDep,
    principal: Integrator,
) -> Response:
    """A delivery: the body as sent and every attempt (status code, the start of the
    answer, duration, error), with a button to send it again."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        hook = Webhook.model_validate(await webhook_service.get(conn, program, webhook_id))
        found, attempts = await webhook_service.delivery(conn, program, webhook_id, delivery_id)
        return {
            "hook": hook,
            "delivery": Delivery.model_validate(found),
            "body": found.body,
            "attempts": [Attempt.model_validate(a) for a in attempts],
            "zone": program.settings.timezone,
        }

    found = await read_only(engine, principal, work)
    zone = found.pop("zone")
    return render(request, "console/webhooks/delivery.html", found, zone=zone)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    request: Request,
    webhook_id: UUID,
    delivery_id: UUID,
    engine: EngineDep,
    principal: Integrator,
) -> Response:
    """Send the delivery again as soon as the worker can, with a fresh schedule."""
    try:
        await in_transaction(
            engine,
            principal,
            lambda conn, program: webhook_service.redeliver(
                conn, program, webhook_id, delivery_id, clock.now()
            ),
        )
    except KopilkaError as exc:
        return await _refused(request, engine, principal, webhook_id, exc)
    notice = gettext(language_of(request), "The delivery will be sent again.")
    return redirect(request, f"/console/webhooks/{webhook_id}/deliveries/{delivery_id}", notice)
