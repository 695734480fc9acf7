"""Webhook endpoints, their deliveries and attempts. Never commits: the request, the CLI or
the worker owns the transaction."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.outbox.consumers import event_data
from kopilka.outbox.events import DomainEvent
from kopilka.programs.service import ProgramContext
from kopilka.webhooks import domain
from kopilka.webhooks.domain import AttemptRow, DeliveryRow, EndpointRow, Leased
from kopilka.webhooks.repository import (
    DELIVERED,
    FAILED,
    PENDING,
    WebhookRepository,
    webhook_repository,
)
from kopilka.webhooks.schemas import WebhookCreate, WebhookUpdate

PING = "webhook.ping"


@dataclass(frozen=True)
class AttemptResult:
    """What one POST of a leased delivery gave."""

    leased: Leased
    attempted_at: datetime
    status_code: int | None
    response: str | None
    duration_ms: int
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _check_address(url: str, allow_private: bool) -> None:
    problem = domain.address_problem(url, allow_private)
    if problem is not None:
        raise InvalidInput(problem, field="url")


class WebhookService:
    def __init__(self, repository: WebhookRepository = webhook_repository) -> None:
        self.repository = repository

    # --- endpoints -----------------------------------------------------------------------

    async def create(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        body: WebhookCreate,
        now: datetime,
        *,
        allow_private: bool = False,
    ) -> EndpointRow:
        """A new endpoint with a new secret (the only time the secret is shown, with
        :meth:`rotate`'s). Its URL must be https to a public host unless ``allow_private``
        (``KOPILKA_WEBHOOK_ALLOW_PRIVATE_URLS``)."""
        _check_address(body.url, allow_private)
        endpoint_id = new_id()
        await self.repository.insert_endpoint(
            conn,
            {
                "id": endpoint_id,
                "program_id": program.id,
                "url": body.url,
                "description": body.description,
                "event_types": body.event_types,
                "enabled": body.enabled,
                "secret": domain.new_secret(),
                "disabled_reason": None,
                "failing_since": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        return await self.get(conn, program, endpoint_id)

    async def get(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        endpoint_id: UUID,
        *,
        lock: bool = False,
    ) -> EndpointRow:
        found = await self.repository.endpoint(conn, program.id, endpoint_id, lock=lock)
        if found is None:
            raise NotFound(f"no webhook {endpoint_id}", field="webhook_id")
        return found

    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext | None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[EndpointRow]:
        return await self.repository.endpoints_page(
            conn, program.id if program else None, limit, after
        )

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        endpoint_id: UUID,
        body: WebhookUpdate,
        now: datetime,
        *,
        allow_private: bool = False,
    ) -> EndpointRow:
        """Change the fields sent; a new URL is checked as :meth:`create` checks it."""
        if body.url is not None:
            _check_address(body.url, allow_private)
        await self.get(conn, program, endpoint_id, lock=True)
        values: dict[str, Any] = body.model_dump(exclude_unset=True)
        for required in ("url", "event_types", "enabled"):
            if required in values and values[required] is None:
                del values[required]
        if values.get("enabled") is True:
            values |= {"disabled_reason": None, "failing_since": None}
        await self.repository.update_endpoint(conn, endpoint_id, updated_at=now, **values)
        return await self.get(conn, program, endpoint_id)

    async def delete(
        self, conn: AsyncConnection, program: ProgramContext, endpoint_id: UUID
    ) -> None:
        await self.get(conn, program, endpoint_id, lock=True)
        await self.repository.delete_endpoint(conn, endpoint_id)

    async def rotate(
        self, conn: AsyncConnection, program: ProgramContext, endpoint_id: UUID, now: datetime
    ) -> EndpointRow:
        """A new secret; messages sent from now on are signed with it."""
        await self.get(conn, program, endpoint_id, lock=True)
        await self.repository.update_endpoint(
            conn, endpoint_id, secret=domain.new_secret(), updated_at=now
        )
        return await self.get(conn, program, endpoint_id)

    # --- deliveries ----------------------------------------------------------------------

    async def deliveries(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        endpoint_id: UUID,
        limit: int,
        after: tuple[datetime, UUID] | None,
        status: str | None = None,
    ) -> list[DeliveryRow]:
        await self.get(conn, program, endpoint_id)
        return await self.repository.deliveries_page(conn, endpoint_id, limit, after, status)

    async def delivery(
        self, conn: AsyncConnection, program: ProgramContext, endpoint_id: UUID, delivery_id: UUID
    ) -> tuple[DeliveryRow, list[AttemptRow]]:
        await self.get(conn, program, endpoint_id)
        found = await self.repository.delivery(conn, endpoint_id, delivery_id)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}", field="delivery_id")
        return found, await self.repository.attempts(conn, delivery_id)

    async def redeliver(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        endpoint_id: UUID,
        delivery_id: UUID,
        now: datetime,
    ) -> DeliveryRow:
        """Send the delivery again now, with a fresh schedule of attempts."""
        endpoint = await self.get(conn, program, endpoint_id)
        if not endpoint.enabled:
            raise Conflict("the webhook is disabled: enable it first", field="enabled")
        found, _ = await self.delivery(conn, program, endpoint_id, delivery_id)
        await self.repository.update_delivery(
            conn, found.id, status=PENDING, attempts=0, next_attempt_at=now, delivered_at=None
        )
        return (await self.delivery(conn, program, endpoint_id, delivery_id))[0]

    async def ping(
        self, conn: AsyncConnection, program: ProgramContext, endpoint_id: UUID, now: datetime
    ) -> DeliveryRow:
        """A ``webhook.ping`` message to the endpoint, due now."""
        endpoint = await self.get(conn, program, endpoint_id)
        if not endpoint.enabled:
            raise Conflict("the webhook is disabled: enable it first", field="enabled")
        message_id = new_id()
        data = {
            "event_id": str(message_id),
            "program_id": str(program.id),
            "webhook_id": str(endpoint_id),
        }
        delivery_id = new_id()
        await self.repository.add_deliveries(
            conn,
            [
                self._delivery(
                    delivery_id, endpoint, message_id, PING, domain.body(PING, now, data), now
                )
            ],
        )
        return (await self.delivery(conn, program, endpoint_id, delivery_id))[0]

    async def enqueue(
        self, conn: AsyncConnection, events: Sequence[DomainEvent], now: datetime
    ) -> int:
        """A delivery per event and enabled endpoint of its program that wants its type
        (the webhooks consumer). An event seen again makes no second delivery."""
        programs = sorted({e.program_id for e in events})
        endpoints: dict[UUID, list[EndpointRow]] = {}
        for endpoint in await self.repository.enabled_endpoints(conn, programs):
            endpoints.setdefault(endpoint.program_id, []).append(endpoint)
        if not endpoints:
            return 0
        rows = []
        for event in events:
            body: str | None = None
            for endpoint in endpoints.get(event.program_id, ()):
                if not domain.wants(endpoint.event_types, event.type):
                    continue
                if body is None:
                    body = domain.body(event.type, event.occurred_at, event_data(event))
                rows.append(
                    self._delivery(new_id(), endpoint, event.event_id, event.type, body, now)
                )
        await self.repository.add_deliveries(conn, rows)
        return len(rows)

    @staticmethod
    def _delivery(
        delivery_id: UUID,
        endpoint: EndpointRow,
        event_id: UUID,
        event_type: str,
        body: str,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "id": delivery_id,
            "endpoint_id": endpoint.id,
            "program_id": endpoint.program_id,
            "event_id": event_id,
            "event_type": event_type,
            "body": body,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "last_status_code": None,
            "last_error": None,
            "created_at": now,
            "delivered_at": None,
        }

    # --- the sender's side ---------------------------------------------------------------

    async def lease(
        self, conn: AsyncConnection, now: datetime, lease: timedelta, limit: int
    ) -> list[Leased]:
        return await self.repository.lease_due(conn, now, now + lease, limit)

    async def record(
        self,
        conn: AsyncConnection,
        results: Sequence[AttemptResult],
        now: datetime,
        disable_after: timedelta,
    ) -> list[UUID]:
        """Log the attempts, schedule or close the deliveries, and disable an endpoint that
        has failed without one success for ``disable_after``. Returns disabled endpoints."""
        await self.repository.add_attempts(
            conn,
            [
                {
                    "delivery_id": r.leased.delivery.id,
                    "attempted_at": r.attempted_at,
                    "status_code": r.status_code,
                    "response": r.response,
                    "duration_ms": r.duration_ms,
                    "error": r.error,
                    "succeeded": r.succeeded,
                }
                for r in results
            ],
        )
        failing: dict[UUID, datetime] = {}
        succeeded: set[UUID] = set()
        changes = []
        for r in results:
            delivery = r.leased.delivery
            attempts = delivery.attempts + 1
            if r.succeeded:
                succeeded.add(delivery.endpoint_id)
                retry_at, status, error, delivered_at = None, DELIVERED, None, r.attempted_at
            else:
                retry_at = domain.next_attempt(attempts, now)
                status = PENDING if retry_at is not None else FAILED
                error, delivered_at = r.error or f"HTTP {r.status_code}", None
                first = failing.get(delivery.endpoint_id)
                failing[delivery.endpoint_id] = min(first or r.attempted_at, r.attempted_at)
            changes.append(
                {
                    "id": delivery.id,
                    "status": status,
                    "attempts": attempts,
                    "next_attempt_at": retry_at,
                    "last_status_code": r.status_code,
                    "last_error": error,
                    "delivered_at": delivered_at,
                }
            )
        await self.repository.update_deliveries(conn, changes)
        disabled = []
        for endpoint_id in succeeded:
            if endpoint_id not in failing:
                await self.repository.clear_failing(conn, endpoint_id)
        for endpoint_id, first_failure in failing.items():
            if endpoint_id in succeeded:
                continue
            endpoint = await self.repository.endpoint_any(conn, endpoint_id)
            if endpoint is None or not endpoint.enabled:
                continue
            since = endpoint.failing_since or first_failure
            if now - since >= disable_after:
                disabled.append(endpoint_id)
                await self.repository.update_endpoint(
                    conn,
                    endpoint_id,
                    enabled=False,
                    failing_since=since,
                    disabled_reason=(
                        f"every attempt failed since {since.isoformat(timespec='seconds')}"
                    ),
                    updated_at=now,
                )
            elif endpoint.failing_since is None:
                await self.repository.update_endpoint(conn, endpoint_id, failing_since=since)
        return disabled

    async def counts(self, conn: AsyncConnection, program_id: UUID | None) -> dict[str, int]:
        return await self.repository.counts(conn, program_id)


webhook_service = WebhookService()
