"""Every query of webhooks.

Locking: a sender leases due deliveries by moving their ``next_attempt_at`` past the time a
request may take, in a short transaction that locks them ``FOR UPDATE SKIP LOCKED``; two
senders never take one delivery, and a sender that dies leaves it due again when the lease
ends. The HTTP request runs outside any transaction (SQLite's one writer is never held
while a receiver answers).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import WriteBatch, insert_rows
from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from kopilka.models.base import table
from kopilka.webhooks.domain import AttemptRow, DeliveryRow, EndpointRow, Leased

endpoints_t = table(WebhookEndpoint)
deliveries_t = table(WebhookDelivery)
attempts_t = table(WebhookAttempt)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def _endpoint(row: Any) -> EndpointRow:
    return EndpointRow(
        id=row.id,
        program_id=row.program_id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        enabled=row.enabled,
        secret=row.secret,
        disabled_reason=row.disabled_reason,
        failing_since=as_utc(row.failing_since) if row.failing_since else None,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _delivery(row: Any) -> DeliveryRow:
    return DeliveryRow(
        id=row.id,
        endpoint_id=row.endpoint_id,
        program_id=row.program_id,
        event_id=row.event_id,
        event_type=row.event_type,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at) if row.next_attempt_at else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=as_utc(row.created_at),
        delivered_at=as_utc(row.delivered_at) if row.delivered_at else None,
    )


def _attempt(row: Any) -> AttemptRow:
    return AttemptRow(
        id=row.id,
        delivery_id=row.delivery_id,
        attempted_at=as_utc(row.attempted_at),
        status_code=row.status_code,
        response=row.response,
        duration_ms=row.duration_ms,
        error=row.error,
        succeeded=row.succeeded,
    )


class WebhookRepository:
    # --- endpoints -----------------------------------------------------------------------

    async def insert_endpoint(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(endpoints_t.insert().values(**row))

    async def endpoint(
        self, conn: AsyncConnection, program_id: UUID, endpoint_id: UUID, *, lock: bool = False
    ) -> EndpointRow | None:
        query = select(endpoints_t).where(
            endpoints_t.c.id == endpoint_id, endpoints_t.c.program_id == program_id
        )
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return _endpoint(row) if row is not None else None

    async def endpoint_any(self, conn: AsyncConnection, endpoint_id: UUID) -> EndpointRow | None:
        """The endpoint, locked, whatever its program (the sender's view)."""
        row = (
            await conn.execute(
                select(endpoints_t).where(endpoints_t.c.id == endpoint_id).with_for_update()
            )
        ).first()
        return _endpoint(row) if row is not None else None

    async def endpoints_page(
        self,
        conn: AsyncConnection,
        program_id: UUID | None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[EndpointRow]:
        query = (
            select(endpoints_t).order_by(endpoints_t.c.created_at, endpoints_t.c.id).limit(limit)
        )
        if program_id is not None:
            query = query.where(endpoints_t.c.program_id == program_id)
        if after is not None:
            query = query.where(
                or_(
                    endpoints_t.c.created_at > after[0],
                    and_(endpoints_t.c.created_at == after[0], endpoints_t.c.id > after[1]),
                )
            )
        return [_endpoint(r) for r in await conn.execute(query)]

    async def enabled_endpoints(
        self, conn: AsyncConnection, program_ids: Sequence[UUID]
    ) -> list[EndpointRow]:
        if not program_ids:
            return []
        rows = await conn.execute(
            select(endpoints_t).where(
                one_of(conn, endpoints_t.c.program_id, program_ids), endpoints_t.c.enabled
            )
        )
        return [_endpoint(r) for r in rows]

    async def update_endpoint(
        self, conn: AsyncConnection, endpoint_id: UUID, **values: Any
    ) -> None:
        await conn.execute(
            update(endpoints_t).where(endpoints_t.c.id == endpoint_id).values(**values)
        )

    async def delete_endpoint(self, conn: AsyncConnection, endpoint_id: UUID) -> None:
        # Attempts and deliveries first: SQLite does not cascade unless asked per connection.
        ids = select(deliveries_t.c.id).where(deliveries_t.c.endpoint_id == endpoint_id)
        await conn.execute(delete(attempts_t).where(attempts_t.c.delivery_id.in_(ids)))
        await conn.execute(delete(deliveries_t).where(deliveries_t.c.endpoint_id == endpoint_id))
        await conn.execute(delete(endpoints_t).where(endpoints_t.c.id == endpoint_id))

    # --- deliveries ----------------------------------------------------------------------

    async def add_deliveries(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """New deliveries; one that exists (the event seen again) is left as it is."""
        if not rows:
            return
        if is_postgres(conn):
            await conn.execute(
                pg_insert(deliveries_t).on_conflict_do_nothing(
                    index_elements=["endpoint_id", "event_id"]
                ),
                rows,
            )
        else:
            await conn.execute(deliveries_t.insert().prefix_with("OR IGNORE"), rows)

    async def delivery(
        self, conn: AsyncConnection, endpoint_id: UUID, delivery_id: UUID
    ) -> DeliveryRow | None:
        row = (
            await conn.execute(
                select(deliveries_t).where(
                    deliveries_t.c.id == delivery_id, deliveries_t.c.endpoint_id == endpoint_id
                )
            )
        ).first()
        return _delivery(row) if row is not None else None

    async def deliveries_page(
        self,
        conn: AsyncConnection,
        endpoint_id: UUID,
        limit: int,
        after: tuple[datetime, UUID] | None,
        status: str | None = None,
    ) -> list[DeliveryRow]:
        """Newest first."""
        d = deliveries_t
        query = (
            select(d)
            .where(d.c.endpoint_id == endpoint_id)
            .order_by(d.c.created_at.desc(), d.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(d.c.status == status)
        if after is not None:
            query = query.where(
                or_(d.c.created_at < after[0], and_(d.c.created_at == after[0], d.c.id < after[1]))
            )
        return [_delivery(r) for r in await conn.execute(query)]

    async def attempts(self, conn: AsyncConnection, delivery_id: UUID) -> list[AttemptRow]:
        rows = await conn.execute(
            select(attempts_t)
            .where(attempts_t.c.delivery_id == delivery_id)
            .order_by(attempts_t.c.id)
        )
        return [_attempt(r) for r in rows]

    async def update_delivery(
        self, conn: AsyncConnection, delivery_id: UUID, **values: Any
    ) -> None:
        await conn.execute(
            update(deliveries_t).where(deliveries_t.c.id == delivery_id).values(**values)
        )

    async def update_deliveries(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """Several deliveries' new state (dicts with ``id`` and the same columns)."""
        batch = WriteBatch()
        batch.update(deliveries_t, ("id",), rows)
        await batch.write(conn)

    async def clear_failing(self, conn: AsyncConnection, endpoint_id: UUID) -> None:
        """A success: the endpoint is no longer failing (no write if it was not)."""
        await conn.execute(
            update(endpoints_t)
            .where(endpoints_t.c.id == endpoint_id, endpoints_t.c.failing_since.is_not(None))
            .values(failing_since=None)
        )

    async def lease_due(
        self, conn: AsyncConnection, now: datetime, until: datetime, limit: int
    ) -> list[Leased]:
        """Take up to ``limit`` due deliveries of enabled endpoints until ``until``."""
        d, e = deliveries_t, endpoints_t
        rows = (
            await conn.execute(
                select(d, e.c.url, e.c.secret)
                .join(e, e.c.id == d.c.endpoint_id)
                .where(d.c.status == PENDING, d.c.next_attempt_at <= now, e.c.enabled)
                .order_by(d.c.next_attempt_at, d.c.id)
                .limit(limit)
                .with_for_update(of=d, skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        await conn.execute(
            update(d)
            .where(one_of(conn, d.c.id, [r.id for r in rows]))
            .values(next_attempt_at=until)
        )
        return [Leased(_delivery(r), r.url, r.secret) for r in rows]

    async def add_attempts(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        await insert_rows(conn, attempts_t, rows)

    async def counts(self, conn: AsyncConnection, program_id: UUID | None) -> dict[str, int]:
        query = select(deliveries_t.c.status, func.count()).group_by(deliveries_t.c.status)
        if program_id is not None:
            query = query.where(deliveries_t.c.program_id == program_id)
        return {r[0]: int(r[1]) for r in await conn.execute(query)}


webhook_repository = WebhookRepository()
